"""Calibration: parity with ccdproc on a real raw frame, truth on a simulated camera."""
import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.calibration.defects import bad_pixel_map, clean_cosmic_rays, clean_pixels, hot_pixel_map
from datas_pipeline.calibration.masters import (
    CCDPROC_SIGMA_CLIP,
    CalibrationError,
    CombineSettings,
    Sections,
    build_master_bias,
    build_master_dark,
    build_master_flat,
    calibrate_frame,
    combine_stack,
    parse_section,
    read_master,
    write_master,
)
from datas_pipeline.io.fits import Frame
from datas_pipeline.synthetic.fields import add_cosmic_rays, make_detector, random_stars, read_out, sky_image

from .calibration_data import calibration_set, ccdproc_reduction, raw_light


def frames(pairs):
    return [Frame(data.astype(np.float32), header) for data, header in pairs]


def test_agrees_with_ccdproc_on_the_real_saao_frame(shared_data):
    light, header = raw_light(shared_data)
    biases, darks, flats = calibration_set(light, header)
    ref_bias, ref_dark, ref_flat, ref_light = ccdproc_reduction(light, header, biases, darks, flats)
    sections = Sections.from_header(header)
    bias = build_master_bias(frames(biases), sections, CCDPROC_SIGMA_CLIP)
    dark = build_master_dark(frames(darks), bias, sections, CCDPROC_SIGMA_CLIP)
    flat = build_master_flat(frames(flats), bias, dark, sections, CCDPROC_SIGMA_CLIP)
    result = calibrate_frame(Frame(light.astype(np.float32), header), bias, dark, flat, sections)
    assert result.data.shape == ref_light.shape == (520, 512)
    raw_level = np.median(light)
    # Masters to 1e-5 of the raw signal (float32 storage is the only difference)...
    assert np.max(np.abs(bias.data - ref_bias)) < 1e-5 * raw_level
    assert np.max(np.abs(dark.data - ref_dark)) < 1e-5 * raw_level
    assert np.max(np.abs(flat.data - ref_flat / ref_flat.mean())) < 1e-5
    # ...and the calibrated light to 1e-5 relative, pixel by pixel.
    scale = np.maximum(np.abs(ref_light), np.median(np.abs(ref_light)))
    assert np.max(np.abs(result.data - ref_light) / scale) < 1e-5
    assert result.header["CALSTAT"] == "BDF" and "BIASSEC" not in result.header


@pytest.fixture(scope="module")
def camera():
    rng = np.random.default_rng(21)
    detector = make_detector((160, 200), rng, overscan_columns=12, dark_current=0.05)
    sections = Sections.from_header(fits.Header(detector.sections()))

    def take(kind, exposure, photons=0.0, n=7, temp=-10.0):
        header = fits.Header({"IMAGETYP": kind, "EXPTIME": exposure, "INSTRUME": "SimCam", "XBINNING": 1,
                              "YBINNING": 1, "GAIN": 100, "OFFSET": 10, "CCD-TEMP": temp, "FILTER": "L"})
        return [Frame(read_out(detector, photons, exposure, rng), header.copy()) for _ in range(n)]

    bias = build_master_bias(take("BIAS", 0.0), sections)
    dark = build_master_dark(take("DARK", 300.0), bias, sections)
    flat = build_master_flat(take("FLAT", 1.0, photons=30000.0), bias, dark, sections)
    return detector, sections, bias, dark, flat, take, rng


def test_a_simulated_camera_calibrates_to_the_sky_it_saw(camera):
    detector, sections, bias, dark, flat, take, rng = camera
    # 7 flats of 30000 e-: 0.25 % noise per pixel.
    assert np.std(flat.data - detector.flat) < 0.004 and abs(np.mean(flat.data) - 1) < 1e-6
    stars = random_stars(detector.shape, 30, rng, flux_range=(1e4, 1e5), margin=10)
    photons = sky_image(detector.shape, stars, sky=800.0, fwhm=3.0)
    header = take("LIGHT", 60.0, n=1)[0].header
    raw = Frame(read_out(detector, photons, 60.0, rng), header)
    result = calibrate_frame(raw, bias, dark, flat, sections)
    truth = photons / detector.gain
    residual = result.data - truth
    # The dark (scaled from 300 s to 60 s), the bias pattern and the vignetting are gone: what
    # is left is noise, with no structure on any scale.
    assert abs(np.median(residual)) < 1.0
    sky_only = truth < 800.0 / detector.gain * 1.01
    # 48 px blocks: 0.4 ADU of noise each, against 130 ADU of uncorrected vignetting.
    block = residual[:144, :192].reshape(3, 48, 4, 48).mean(axis=(1, 3))
    assert block.std() < 1.0 and np.median(np.abs(residual[sky_only])) < 3 * np.sqrt(800) / detector.gain


def test_dark_with_bias_is_not_scaled(camera):
    detector, sections, bias, _, _, take, _ = camera
    raw_dark = build_master_dark(take("DARK", 300.0, n=3), None, sections)
    light = take("LIGHT", 60.0, n=1)[0]
    with pytest.raises(CalibrationError, match="still contains the bias"):
        calibrate_frame(light, None, raw_dark, None, sections)
    same = take("LIGHT", 300.0, n=1)[0]
    assert calibrate_frame(same, bias, raw_dark, None, sections).header["CALSTAT"] == "BD"


def test_mixed_dark_exposures_and_shapes_are_refused(camera):
    _, sections, bias, _, _, take, _ = camera
    with pytest.raises(CalibrationError, match="different exposures"):
        build_master_dark(take("DARK", 300.0, n=2) + take("DARK", 120.0, n=2), bias, sections)
    odd = Frame(np.zeros((10, 10), np.float32), fits.Header({"EXPTIME": 60.0}))
    with pytest.raises(CalibrationError, match="does not match the master bias"):
        calibrate_frame(odd, bias)


def test_masters_round_trip_and_memory_mapped_stacks_agree(camera, tmp_path):
    _, sections, bias, dark, _, take, _ = camera
    path = write_master(dark, tmp_path / "dark.fits")
    again = read_master(path)
    assert again.kind == "dark" and again.bias_subtracted and again.exposure_s == 300.0
    assert np.array_equal(again.data, dark.data)
    stack = np.random.default_rng(0).normal(100, 5, (9, 40, 30)).astype(np.float32)
    stack[3, 5, 5] = 1e5
    in_memory, rejected = combine_stack(stack, CombineSettings(band_rows=7))
    assert rejected >= 1 and abs(in_memory[5, 5] - 100) < 10
    from datas_pipeline.calibration import masters as calibration

    darks = take("DARK", 300.0, n=3)
    on_disk = calibration._combine_frames(darks, lambda f: f.data, CombineSettings(), budget=0)[0]
    in_ram = calibration._combine_frames(darks, lambda f: f.data, CombineSettings())[0]
    assert np.array_equal(on_disk, in_ram)


def test_sections():
    assert parse_section("[17:528,1:520]") == (slice(0, 520), slice(16, 528))
    assert parse_section("[ 4: 13, 1: 520]") == (slice(0, 520), slice(3, 13))
    assert parse_section("[100:1,*]") == (slice(None), slice(0, 100))
    with pytest.raises(CalibrationError, match="not a FITS section"):
        parse_section("4:13")


def test_hot_pixels_are_found_and_cleaned(camera):
    detector, _, _, dark, _, _, _ = camera
    hot = hot_pixel_map(dark.data)
    truth = detector.hot_pixels
    assert (hot & truth).sum() >= 0.95 * truth.sum() and (hot & ~truth).sum() <= 0.1 * truth.sum() + 2
    image = np.full(detector.shape, 50.0, np.float32)
    image[truth] = 5000.0
    assert np.allclose(clean_pixels(image, hot | truth), 50.0)
    assert bad_pixel_map(dark.data, np.ones(detector.shape)).sum() == hot.sum()


def test_cosmic_rays_are_found_without_eating_stars():
    rng = np.random.default_rng(4)
    shape = (200, 200)
    stars = random_stars(shape, 40, rng, flux_range=(5e3, 2e5), margin=10)
    hits, truth = add_cosmic_rays(shape, 30, rng)
    image = rng.poisson(sky_image(shape, stars, sky=300.0, fwhm=3.5) + hits) + rng.normal(0, 5, shape)
    cleaned, found = clean_cosmic_rays(image.astype(np.float32), gain=1.0, read_noise=5.0)
    assert (found & truth).sum() >= 0.9 * truth.sum()
    near_hit = np.zeros(shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near_hit |= np.roll(np.roll(truth, dy, 0), dx, 1)
    assert (found & ~near_hit).sum() <= 5
    assert np.max(cleaned[truth]) < np.max(image[truth])


def test_one_robust_sigma_everywhere():
    from datas_pipeline import robust
    from datas_pipeline.calibration import defects
    from datas_pipeline.detection import grading

    rng = np.random.default_rng(3)
    values = rng.normal(10.0, 2.0, 200_001)
    values[:1000] = 1e6  # stars and hot pixels must not move it
    values[1000:1010] = np.nan
    median, sigma = robust.median_sigma(values)
    assert median == pytest.approx(10.0, abs=0.02) and sigma == pytest.approx(2.0, rel=0.02)
    assert defects.robust_sigma(values) == sigma and grading._robust(values) == (median, sigma)
    assert robust.median_sigma(np.array([np.nan]))[1] != robust.median_sigma(np.array([np.nan]))[1]
