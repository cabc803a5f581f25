import io

import numpy as np
from datas_pipeline.display.preview import preview_pngs
from datas_pipeline.synthetic.fields import star_field
from PIL import Image


def test_previews_fit_their_sizes_and_show_the_stars_north_up():
    image, stars = star_field((600, 900), n_stars=30, seed=2, flux_range=(5e4, 2e5))
    large, small = (Image.open(io.BytesIO(png)) for png in preview_pngs(image, sides=(300, 100)))
    assert max(large.size) <= 300 and max(small.size) <= 100 and large.mode == "L"
    pixels = np.asarray(large, dtype=float)
    # The brightest star, binned by 3, appears flipped vertically (row 0 at the top is FITS's last row).
    brightest = stars[np.argmax(stars["flux"])]
    row, col = int((599 - brightest["y"]) / 3), int(brightest["x"] / 3)
    assert pixels[max(row - 2, 0):row + 3, max(col - 2, 0):col + 3].max() > 200
    assert np.median(pixels) < 100  # the sky stays dark


def test_colour_previews_are_rgb():
    image, _ = star_field((200, 200), n_stars=10, seed=3)
    (png,) = preview_pngs(np.stack([image, image * 0.9, image * 0.8]), sides=(100,))
    assert Image.open(io.BytesIO(png)).mode == "RGB"
