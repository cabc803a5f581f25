"""Raw frames grade like calibrated ones: hot pixels and cosmic rays are not counted as stars."""
import numpy as np
import pytest
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.detection.grading import measure_frame
from datas_pipeline.detection.sharpness import gaussian_sharpness, point_sharpness
from datas_pipeline.synthetic.fields import add_cosmic_rays, make_detector, random_stars, read_out, sky_image

SHAPE = (512, 512)


@pytest.fixture(scope="module")
def raw_and_calibrated():
    rng = np.random.default_rng(3)
    detector = make_detector(SHAPE, rng, hot_fraction=2e-3, hot_current=(5.0, 80.0))
    stars = random_stars(SHAPE, 150, rng, flux_range=(3e3, 2e5), margin=10)
    photons = sky_image(SHAPE, stars, sky=300.0, fwhm=3.5)
    raw = read_out(detector, photons, 120.0, rng, extra_electrons=add_cosmic_rays(SHAPE, 30, rng)[0])
    calibrated = (raw - detector.bias - detector.dark_current * 120.0 / detector.gain) / detector.flat
    return raw, calibrated.astype(np.float32), int(detector.hot_pixels.sum())


def test_hot_pixels_outnumber_the_stars_in_the_raw_frame(raw_and_calibrated):
    raw, calibrated, hot = raw_and_calibrated
    assert hot > 400
    # The plain extraction (SExtractor's behaviour) counts them: the problem being solved.
    assert len(extract_sources(raw)) > 2 * len(extract_sources(calibrated))


def test_raw_and_calibrated_frames_grade_alike(raw_and_calibrated):
    raw, calibrated, _ = raw_and_calibrated
    q_raw, q_cal = measure_frame(raw), measure_frame(calibrated)
    assert abs(q_raw.stars - q_cal.stars) <= 0.15 * q_cal.stars
    assert q_raw.fwhm_px == pytest.approx(q_cal.fwhm_px, rel=0.05)
    assert q_cal.fwhm_px == pytest.approx(3.5, rel=0.1)
    assert abs(q_raw.eccentricity - q_cal.eccentricity) < 0.05


def test_sharpness_of_stars_and_lone_pixels():
    assert gaussian_sharpness(1.0) == pytest.approx(0.909, abs=2e-3)
    assert gaussian_sharpness(2.0) == pytest.approx(0.585, abs=2e-3)
    assert gaussian_sharpness(1.5) > gaussian_sharpness(3.0) > gaussian_sharpness(5.0) > 0
    image = np.zeros((40, 40))
    image[10, 10] = 500.0   # a hot pixel
    yy, xx = np.mgrid[0:40, 0:40]
    image += 800.0 * np.exp(-0.5 * ((xx - 25.3) ** 2 + (yy - 24.8) ** 2) / (3.0 / 2.3548) ** 2)
    sharp = point_sharpness(image, np.array([10.0, 25.3, 0.0]), np.array([10.0, 24.8, 0.0]))
    assert sharp[0] == pytest.approx(1.0) and sharp[1] < gaussian_sharpness(2.0) and sharp[2] < 0.5  # a faint slope: not sharp
