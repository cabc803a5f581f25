"""The synthetic generator is the truth for the science tests, so it is tested first."""
import numpy as np
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.synthetic.fields import random_stars, render_stars, star_field, transform_points


def test_rendered_flux_is_conserved():
    stars = np.array([(50.3, 40.7, 1e5)], dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    image = render_stars((100, 100), stars, fwhm=3.5)
    assert abs(image.sum() / 1e5 - 1.0) < 2e-3


def test_extraction_recovers_injected_positions():
    image, stars = star_field((256, 256), n_stars=40, seed=3, flux_range=(2e4, 2e5))
    found = extract_sources(image)
    assert len(found) >= 38
    d = np.hypot(found["x"][:, None] - stars["x"][None], found["y"][:, None] - stars["y"][None])
    matched = d.min(axis=1) < 0.5
    assert matched.mean() > 0.9
    assert np.median(d.min(axis=1)[matched]) < 0.05
    # Half-light FWHM over-reads Moffat wings (beta=3) by ~25 %; a profile fit is the real measure.
    assert 2.5 < np.median(found["fwhm"][matched]) < 4.2


def test_transform_points_rotates_about_center():
    x, y = transform_points(np.array([10.0]), np.array([0.0]), rotation_deg=90, center=(0, 0), dx=1)
    assert np.allclose([x[0], y[0]], [1.0, 10.0])


def test_random_stars_seeded():
    a = random_stars((64, 64), 5, np.random.default_rng(1))
    b = random_stars((64, 64), 5, np.random.default_rng(1))
    assert np.array_equal(a, b)


def test_trailing_keeps_the_flux_and_smears_along_the_drift():
    from datas_pipeline.synthetic.fields import STAR_DTYPE

    star = np.array([(60.0, 50.0, 1e5)], dtype=STAR_DTYPE)
    image = render_stars((100, 120), star, fwhm=3.0, trail=(20.0, 0.0))
    assert abs(image.sum() / 1e5 - 1) < 3e-3
    columns = image.sum(axis=0)
    assert columns[52:68].min() > 0.5 * columns[52:68].max()  # flat along the 20 px drift
    found = extract_sources(image + np.random.default_rng(0).normal(0, 1, image.shape))
    assert found["elongation"][0] > 3 and abs(found["x"][0] - 60.0) < 0.2


def test_detector_truth_is_consistent():
    from datas_pipeline.synthetic.fields import make_detector, read_out

    rng = np.random.default_rng(2)
    det = make_detector((80, 100), rng, overscan_columns=8, hot_fraction=2e-3)
    assert abs(det.flat.mean() - 1) < 1e-9 and det.flat.min() > 0.6
    assert det.hot_pixels.sum() > 0 and np.all(det.dark_current[det.hot_pixels] >= 5.0)
    bias = read_out(det, 0.0, 0.0, rng, bias_drift=0.0)
    assert bias.shape == (80, 108) and np.all(bias == np.rint(bias))
    assert abs(np.median(bias[:, :100] - det.bias) - 1.0) < 1.0  # the row ramp, ~1 ADU
    dark = read_out(det, 0.0, 600.0, rng, bias_drift=0.0)
    hot_signal = (dark[:, :100] - bias[:, :100])[det.hot_pixels]
    assert np.median(hot_signal) > 5.0 * 600 / det.gain * 0.8
    assert det.sections()["BIASSEC"] == "[103:108,1:80]"


def test_satellite_streak_and_cosmic_rays():
    from datas_pipeline.synthetic.fields import add_cosmic_rays, satellite_streak

    streak = satellite_streak((100, 200), (10.0, 20.0), (190.0, 80.0), electrons_per_px=400.0, width_fwhm=2.0)
    # Integrated across the trail: 400 e- x the Gaussian's area (sigma = 2 / 2.3548) per unit length.
    across = streak[:, 100].sum() * np.cos(np.arctan2(60.0, 180.0))
    assert abs(across / (400.0 * 2.0 / 2.3548 * np.sqrt(2 * np.pi)) - 1) < 0.05
    assert streak[:, :5].max() < 1e-6
    found = extract_sources(streak + np.random.default_rng(1).normal(0, 3, streak.shape))
    assert len(found) >= 1 and found["elongation"][0] > 10
    hits, mask = add_cosmic_rays((64, 64), 10, np.random.default_rng(3))
    assert mask.sum() >= 10 and np.all(hits[mask] >= 800.0)


def test_inject_trail_is_the_satellite_streak_through_the_frame():
    from datas_pipeline.synthetic.fields import satellite_streak
    from datas_pipeline.synthetic.sequence import inject_trail

    image = np.zeros((80, 120), np.float64)
    mask = inject_trail(image, np.random.default_rng(8), amplitude_adu=1000.0, width_px=2.0)
    rng = np.random.default_rng(8)
    angle, x0, y0 = rng.uniform(0, np.pi), rng.uniform(36, 84), rng.uniform(24, 56)
    d = 200.0
    expected = satellite_streak((80, 120), (x0 - d * np.cos(angle), y0 - d * np.sin(angle)),
                                (x0 + d * np.cos(angle), y0 + d * np.sin(angle)), 1000.0, 2.0)
    np.testing.assert_allclose(image, expected, atol=1e-6)
    # The core mask: within 2 FWHM (4 px) of the axis, a band about 8 px wide across the frame.
    assert abs(image.max() - 1000.0) < 20.0 and 7 * 80 < mask.sum() < 9 * 160
