"""Photometry: fluxes and CCD-equation errors against seeded truth, zero points, airmass."""
from datetime import UTC, datetime

import numpy as np
import pytest
from astropy.io import fits
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.headers import normalise_header
from datas_pipeline.photometry.aperture import NoiseModel, aperture_photometry, recenter
from datas_pipeline.photometry.differential import (
    Comparison,
    airmass,
    differential_magnitude,
    fit_zero_point,
    header_airmass,
    kasten_young_airmass,
)
from datas_pipeline.synthetic.fields import moffat_alpha, random_stars, render_stars

SHAPE = (200, 200)
GAIN, READ_NOISE, DARK, EXPOSURE, SKY_E = 1.6, 7.0, 0.5, 60.0, 300.0


def enclosed(radius: float, fwhm: float, beta: float = 3.0) -> float:
    """Fraction of a Moffat star's flux within ``radius``."""
    alpha = moffat_alpha(fwhm, beta)
    return 1.0 - (1.0 + (radius / alpha) ** 2) ** (1.0 - beta)


@pytest.fixture(scope="module")
def constant_stars():
    """40 exposures of the same 25 constant stars: sky, dark current, read and shot noise."""
    rng = np.random.default_rng(12)
    stars = random_stars(SHAPE, 25, rng, flux_range=(3e3, 3e5))
    grid = np.arange(25)  # 38 px apart: each star's annulus sees only sky
    stars["x"] = 24.0 + 38.0 * (grid % 5) + rng.uniform(-2, 2, 25)
    stars["y"] = 24.0 + 38.0 * (grid // 5) + rng.uniform(-2, 2, 25)
    ideal = render_stars(SHAPE, stars, fwhm=3.0)
    noise = NoiseModel(gain=GAIN, read_noise=READ_NOISE, dark_current=DARK, exposure_s=EXPOSURE)
    runs = []
    for _ in range(40):
        # Dark current adds shot noise; its mean level was removed by the dark frame.
        electrons = rng.poisson(ideal + SKY_E + DARK * EXPOSURE) - DARK * EXPOSURE
        image = (electrons + rng.normal(0, READ_NOISE, SHAPE)) / GAIN
        runs.append(aperture_photometry(image, stars["x"], stars["y"], 6.0, (10.0, 16.0), noise))
    return stars, np.array(runs)


def test_errors_match_the_scatter_of_constant_stars(constant_stars):
    _, runs = constant_stars
    flux, err = runs["flux"], runs["flux_err"]
    chi2 = ((flux - flux.mean(axis=0)) ** 2 / err**2).sum(axis=0) / (len(runs) - 1)
    # 25 stars x 39 degrees of freedom: the median reduced chi2 is 1 within ~0.1.
    assert 0.85 < np.median(chi2) < 1.15
    assert np.all(chi2 < 2.0)


def test_fluxes_are_right(constant_stars):
    stars, runs = constant_stars
    expected = stars["flux"] * enclosed(6.0, 3.0) / GAIN
    ratio = runs["flux"].mean(axis=0) / expected
    bright = stars["flux"] > 3e4
    assert abs(np.median(ratio[bright]) - 1) < 0.003
    assert abs(np.median(runs["sky"]) / (SKY_E / GAIN) - 1) < 0.003
    assert np.all(runs["flag"] == 0)
    mags = runs["mag"].mean(axis=0)
    assert np.allclose(mags[bright], -2.5 * np.log10(expected[bright] / EXPOSURE), atol=0.01)


def test_zero_point_target_and_check_star_recover_the_truth():
    rng = np.random.default_rng(5)
    zp_true = 21.3
    stars = random_stars(SHAPE, 9, rng, flux_range=(2e4, 2e5))
    # On a grid, 60 px apart: no blends, so only the variable is an outlier.
    grid = np.arange(9)
    stars["x"] = 40.0 + 60.0 * (grid % 3) + rng.uniform(-3, 3, 9)
    stars["y"] = 40.0 + 60.0 * (grid // 3) + rng.uniform(-3, 3, 9)
    catalog = zp_true - 2.5 * np.log10(stars["flux"] * enclosed(6.0, 3.0) / GAIN / EXPOSURE)
    stars["flux"][3] *= 1.5  # comparison 3 is variable: 0.44 mag brighter than the catalogue
    image = (rng.poisson(render_stars(SHAPE, stars, fwhm=3.0) + SKY_E) + rng.normal(0, 5, SHAPE)) / GAIN
    noise = NoiseModel(gain=GAIN, read_noise=5.0, exposure_s=EXPOSURE)
    x, y, ok = recenter(image, stars["x"] + 0.6, stars["y"] - 0.5, fwhm=3.0)
    assert ok.all() and np.max(np.hypot(x - stars["x"], y - stars["y"])) < 0.1
    phot = aperture_photometry(image, x, y, 6.0, (10.0, 16.0), noise)
    comps = [Comparison(catalog[i], phot["mag"][i], phot["mag_err"][i], name=f"C{i}") for i in range(1, 8)]
    check = Comparison(catalog[8], phot["mag"][8], phot["mag_err"][8], name="K")
    result = differential_magnitude(phot["mag"][0], phot["mag_err"][0], comps, check)
    assert abs(result.magnitude - catalog[0]) < 3 * result.magnitude_error
    assert abs(result.zero_point - zp_true) < 3 * result.zero_point_error
    used = {s["name"]: s["used"] for s in result.comparison_stars}
    assert used == {f"C{i}": i != 3 for i in range(1, 8)}
    assert abs(result.check_star["residual"]) < 3 * result.check_star["error"]
    single = differential_magnitude(phot["mag"][0], phot["mag_err"][0], comps, method="single")
    assert single.method == "differential-single" and abs(single.magnitude - catalog[0]) < 0.05
    record = result.as_dict()
    assert {"magnitude", "magnitude_error", "method", "comparison_stars", "check_star"} <= set(record)


def test_zero_point_statistics():
    comps = [Comparison(10.0 + i, i - 15.0, 0.01) for i in range(5)]
    zp = fit_zero_point(comps)
    assert zp.value == pytest.approx(25.0) and zp.error == pytest.approx(0.01 / np.sqrt(5))
    with pytest.raises(PipelineError, match="no comparison stars"):
        fit_zero_point([])
    with pytest.raises(PipelineError, match="no positive flux"):
        differential_magnitude(float("nan"), 0.1, comps)


def test_airmass_from_site_and_time():
    # Zenith: a star at the site's latitude crossing the meridian.
    site_lat, site_lon = 52.0, 0.0
    when = datetime(2024, 3, 20, 12, 0, tzinfo=UTC)
    from astropy import units as u
    from astropy.coordinates import EarthLocation
    from astropy.time import Time

    lst = Time(when).sidereal_time("apparent", longitude=0 * u.deg).deg
    assert airmass(lst, site_lat, when, site_lat, site_lon) == pytest.approx(1.0, abs=0.01)
    assert kasten_young_airmass(30.0) == pytest.approx(1.9943, abs=1e-3)
    assert kasten_young_airmass(90.0) == pytest.approx(1.0, abs=1e-3)
    assert not np.isfinite(kasten_young_airmass(-5.0))  # below the horizon: no airmass
    header = fits.Header({"DATE-OBS": "2024-03-20T11:59:30", "EXPTIME": 60.0, "RA": lst, "DEC": site_lat,
                          "SITELAT": site_lat, "SITELONG": site_lon, "IMAGETYP": "LIGHT"})
    value, source = header_airmass(normalise_header(header))
    assert source == "computed" and value == pytest.approx(1.0, abs=0.01)
    assert header_airmass(normalise_header(fits.Header({"AIRMASS": 1.3})))[0] == 1.3
    del EarthLocation


def test_bad_photometry_input():
    image = np.ones((50, 50))
    with pytest.raises(PipelineError, match="aperture radius"):
        aperture_photometry(image, [10], [10], 0.0, (5, 8))
    with pytest.raises(PipelineError, match="annulus"):
        aperture_photometry(image, [10], [10], 3.0, (8, 5))
    with pytest.raises(PipelineError, match="gain"):
        NoiseModel(gain=0)
    edge = aperture_photometry(image, [1.0], [25.0], 4.0, (6, 9))
    assert edge["flag"][0] & 1
