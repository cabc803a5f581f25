"""Frames with regions of no data (zero padding, clipped black sky, NaN) are measured, not refused."""
import numpy as np
import pytest
from datas_pipeline.detection.extract import estimate_background, extract_sources
from datas_pipeline.errors import PipelineError
from datas_pipeline.synthetic.fields import expose, random_stars, sky_image

SHAPE = (512, 512)


@pytest.fixture(scope="module")
def field():
    rng = np.random.default_rng(4)
    stars = random_stars(SHAPE, 120, rng, flux_range=(5e3, 2e5), margin=10)
    return expose(sky_image(SHAPE, stars, sky=150.0, fwhm=3.0), rng, sky=0.0).astype(np.float32)


def match(a, b, radius=0.5):
    d = np.hypot(a["x"][:, None] - b["x"][None, :], a["y"][:, None] - b["y"][None, :])
    return d.min(axis=1)


@pytest.mark.parametrize("fill", [0.0, np.nan])
def test_padding_is_left_out_of_the_model_and_the_catalogue(field, fill):
    padded = field.copy()
    padded[:, :160] = fill
    padded[400:, :] = fill
    background = estimate_background(padded)
    assert np.all(background.rms > 0) and background.empty is not None and background.empty[:, :160].all()
    inner = (slice(20, 380), slice(180, 500))
    # The sky under the data is modelled as without the padding (within its noise).
    reference = estimate_background(field)
    assert np.abs(background.level[inner] - reference.level[inner]).max() < 0.3 * reference.global_rms
    found = extract_sources(padded)
    assert np.isfinite(found["flux"]).all()
    assert found["x"].min() > 155 and found["y"].max() < 404
    full = extract_sources(field)
    # Stars well clear of the padding (5 FWHM) are measured as on the whole frame.
    away = full[(full["x"] > 175) & (full["y"] < 385)]
    offsets = match(away, found)
    assert len(away) > 20 and np.median(offsets) < 1e-3 and np.mean(offsets < 0.05) > 0.95


def test_clipped_black_sky_is_not_called_blank(field):
    # The old refusal: sep's noise map dipped to <= 0 next to exact zeros.
    clipped = np.clip(field - np.median(field) + 1.0, 0, None)
    clipped[:, :100] = 0.0
    assert (clipped == 0).mean() > 0.4
    found = extract_sources(clipped)
    assert len(found) > 40
    stray = field.copy()
    stray[100, 100] = 0.0  # a single zero is data, not an empty region
    assert estimate_background(stray).empty is None


def test_a_frame_of_nothing_is_still_refused():
    with pytest.raises(PipelineError, match="noise is zero"):
        extract_sources(np.zeros((64, 64), np.float32))
