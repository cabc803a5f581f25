"""Colour: masters registered on each other, neutral sky, white stars, LRGB and palettes."""
import numpy as np
import pytest
import sep
from datas_pipeline.display.color import combine_palette, combine_rgb, lrgb, render_color
from datas_pipeline.errors import ColorError
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars
from datas_pipeline.synthetic.sequence import Pose
from PIL import Image

SHAPE = (256, 256)
RESPONSE = {"R": 0.6, "G": 1.0, "B": 1.4}
SKY = {"R": 100.0, "G": 300.0, "B": 50.0}
POSES = {"R": Pose(1.3, -0.7, 0.2), "G": Pose(), "B": Pose(-2.1, 0.4, -0.3)}


@pytest.fixture(scope="module")
def masters():
    rng = np.random.default_rng(61)
    stars = random_stars(SHAPE, 120, rng, flux_range=(2e4, 3e5), margin=-20)
    colour = rng.normal(1.0, 0.15, len(stars)).clip(0.6, 1.4)   # star-to-star colour scatter
    out = {}
    for name in "RGB":
        moved = stars.copy()
        moved["x"], moved["y"] = POSES[name].apply(stars["x"], stars["y"], SHAPE)
        tint = colour if name == "R" else (1.0 / colour if name == "B" else 1.0)
        moved["flux"] = stars["flux"] * RESPONSE[name] * tint
        out[name] = expose(render_stars(SHAPE, moved), rng, sky=SKY[name] * 10, read_noise=3.0, gain=10.0)
    return out


def _star_ratios(planes):
    stars = find_control_stars(np.nan_to_num(planes.sum(axis=0)), 60)
    flux = [sep.sum_circle(np.ascontiguousarray(np.nan_to_num(p), dtype=np.float64), stars["x"], stars["y"], 6.0,
                           bkgann=(9.0, 15.0))[0] for p in planes]
    return np.median(flux[0] / flux[1]), np.median(flux[2] / flux[1])


def test_rgb_is_registered_neutral_and_white_balanced(masters):
    image = combine_rgb(masters["R"], masters["G"], masters["B"])
    assert set(image.registrations) == {"R", "B"} and all(r.accepted for r in image.registrations.values())
    # Registered: the same stars sit at the same place in every plane.
    found = [find_control_stars(np.nan_to_num(p, nan=0.0), 30) for p in image.rgb]
    for other in (found[0], found[2]):
        d = np.hypot(found[1]["x"][:, None] - other["x"][None], found[1]["y"][:, None] - other["y"][None]).min(axis=1)
        assert np.median(d[d < 1]) < 0.05 and (d < 1).sum() > 20
    # Neutral: the sky is at zero in every plane.
    for plane in image.rgb:
        assert abs(np.nanmedian(plane)) < 0.02 * np.nanstd(plane) + 1.0
    assert image.background[1] > image.background[0] > image.background[2]
    # White: the median star is as bright in R and B as in G; the factors undo the responses.
    red, blue = _star_ratios(image.rgb)
    assert red == pytest.approx(1.0, abs=0.02) and blue == pytest.approx(1.0, abs=0.02)
    assert image.white_balance[0] == pytest.approx(1 / 0.6, rel=0.1)
    assert image.white_balance[2] == pytest.approx(1 / 1.4, rel=0.1)


def test_lrgb_takes_brightness_from_luminance(masters, tmp_path):
    lum = masters["G"] * 2.0
    image = combine_rgb(masters["R"], masters["G"], masters["B"], luminance=lum)
    path = render_color(image, tmp_path / "lrgb.png")
    with Image.open(path) as png:
        assert png.mode == "RGB" and png.size == (256, 256)
    display = np.array([[0.2, 0.4], [0.0, 0.9]], np.float32)
    rgb = np.stack([display * 0.5, display, display * 1.5]).clip(0, 1)
    out = lrgb(rgb, np.full((2, 2), 0.6, np.float32))
    y = 0.2126 * out[0] + 0.7152 * out[1] + 0.0722 * out[2]
    assert np.allclose(y[rgb[1] > 0], 0.6, atol=0.02)
    assert np.allclose(out[:, 1, 0], 0.6)            # no colour: grey at L


def test_palette_maps_lines_to_channels():
    rng = np.random.default_rng(62)
    base = random_stars(SHAPE, 60, rng, flux_range=(5e4, 2e5), margin=10)
    nebula = np.zeros(SHAPE)
    nebula[100:140, 60:90] = 4000.0
    planes = {}
    for name, gain in (("HA", 1.0), ("OIII", 0.3), ("SII", 0.1)):
        electrons = render_stars(SHAPE, base) + (nebula if name == "SII" else 0)
        planes[name] = expose(electrons * gain, rng, sky=50.0)
    image = combine_palette(planes, "SHO")
    red, green = image.rgb[0], image.rgb[1]
    patch, elsewhere = (slice(105, 135), slice(65, 85)), (slice(10, 40), slice(180, 220))
    assert np.nanmedian(red[patch]) > 10 * max(np.nanstd(red[elsewhere]), 1e-6)
    assert abs(np.nanmedian(green[patch]) - np.nanmedian(green[elsewhere])) < 3 * np.nanstd(green[elsewhere])


def test_colour_errors_are_clear(masters):
    blank = np.random.default_rng(1).normal(100, 3, SHAPE).astype(np.float32)
    with pytest.raises(ColorError, match="cannot register the B master"):
        combine_rgb(masters["R"], masters["G"], blank)
    with pytest.raises(ColorError, match="differ in size"):
        combine_rgb(masters["R"], masters["G"], masters["B"][:100], register=False)
    with pytest.raises(ColorError, match="unknown palette"):
        combine_palette({"HA": blank}, "XYZ")
    with pytest.raises(ColorError, match="missing OIII"):
        combine_palette({"HA": blank, "SII": blank}, "SHO")
