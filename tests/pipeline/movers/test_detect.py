"""Footprint shapes (JTransient's real slow movers and double-star impostors), streaks, peaks, sharp pixels."""
from pathlib import Path

import numpy as np
import pytest
from datas_pipeline.movers.detect import classify_footprint, find_streaks, footprint_shape, lobes, local_peaks
from datas_pipeline.movers.sequence import sharp_pixels
from datas_pipeline.synthetic.fields import STAR_DTYPE, render_stars, satellite_streak
from PIL import Image

# Copied from ../shared/data/jtransient_shapes (JTransient's test resources, BSD-2-Clause; see PROVENANCE.txt).
SHAPES = Path(__file__).resolve().parent / "data" / "jtransient_shapes"


def _mask(name: str) -> np.ndarray:
    return np.asarray(Image.open(SHAPES / name)).max(axis=-1) > 0


@pytest.mark.parametrize("number", range(1, 10))
def test_real_slow_movers_are_one_lobe_and_not_streaks(number):
    mask = _mask(f"real-slow-mover-{number:02d}.png")
    assert classify_footprint(mask) == "elongated"
    assert lobes(mask) == 1
    ys, xs = np.nonzero(mask)
    assert 1.5 < footprint_shape(ys, xs).elongation < 2.5


@pytest.mark.parametrize("number", (1, 2))
def test_double_stars_that_look_like_streaks_are_doubles(number):
    mask = _mask(f"binary-streak-shape-{number:02d}.png")
    assert classify_footprint(mask) == "double"
    ys, xs = np.nonzero(mask)
    shape = footprint_shape(ys, xs)
    # Elongated along the line joining the two stars (lower left to upper right in the image).
    assert shape.elongation > 3 and 130 < shape.angle_deg < 155


def test_footprint_angle_and_length_of_a_bar():
    mask = np.zeros((60, 60), bool)
    t = np.linspace(-20, 20, 400)
    angle = np.radians(30.0)
    mask[np.rint(30 + t * np.sin(angle)).astype(int), np.rint(30 + t * np.cos(angle)).astype(int)] = True
    ys, xs = np.nonzero(mask)
    shape = footprint_shape(ys, xs)
    assert shape.angle_deg == pytest.approx(30.0, abs=1.5)
    assert shape.length_px == pytest.approx(41.0, abs=2.0)
    assert classify_footprint(mask) == "streak"


def test_find_streaks_on_an_snr_map():
    rng = np.random.default_rng(3)
    snr = rng.normal(0, 1, (200, 200)).astype(np.float32)
    snr += satellite_streak((200, 200), (10.0, 30.0), (190.0, 120.0), electrons_per_px=8.0, width_fwhm=3.0)
    streaks, mask = find_streaks(snr, 4, fwhm_px=3.0)
    assert len(streaks) == 1
    s = streaks[0]
    assert s.frame == 4 and s.angle_deg == pytest.approx(np.degrees(np.arctan2(90, 180)), abs=1.0)
    assert s.length_px == pytest.approx(np.hypot(180, 90), rel=0.1)
    assert mask[75, 100] and not mask[150, 30]


def test_local_peaks_sub_pixel():
    stars = np.zeros(2, STAR_DTYPE)
    stars["x"], stars["y"], stars["flux"] = [20.3, 40.7], [30.6, 12.2], [100.0, 50.0]
    image = render_stars((50, 60), stars, fwhm=3.0)
    peaks = local_peaks(image, 0.5)
    assert len(peaks) == 2
    assert peaks[0, 0] == pytest.approx(20.3, abs=0.1) and peaks[0, 1] == pytest.approx(30.6, abs=0.1)


def test_sharp_pixels_catch_hits_not_stars():
    rng = np.random.default_rng(1)
    image = rng.normal(0, 10, (80, 80)).astype(np.float32)
    stars = np.zeros(1, STAR_DTYPE)
    stars["x"], stars["y"], stars["flux"] = 40.0, 40.0, 20000.0
    image += render_stars((80, 80), stars, fwhm=2.5).astype(np.float32)
    image[10, 10] += 500.0  # hot pixel
    image[60, 20:23] += 800.0  # cosmic-ray track
    hits = sharp_pixels(image, 10.0)
    assert hits[10, 10] and hits[60, 20:23].all()
    assert not hits[36:45, 36:45].any()
