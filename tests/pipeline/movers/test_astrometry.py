"""Great-circle constant-rate fit and pixel-to-sky positions."""
import numpy as np
import pytest
from datas_pipeline.movers.astrometry import great_circle_fit, pixel_scale_arcsec, pixel_to_sky
from datas_pipeline.synthetic.fields import make_wcs


def test_great_circle_fit_of_a_constant_rate_motion():
    seconds = np.arange(0, 1200, 60.0)
    # Due east along the equator at 30"/min.
    ra = 10.0 + seconds / 60.0 * 30.0 / 3600.0
    dec = np.zeros_like(ra)
    fit = great_circle_fit(ra, dec, seconds)
    assert fit["rate_arcsec_per_min"] == pytest.approx(30.0, rel=1e-6)
    assert fit["position_angle_deg"] == pytest.approx(90.0, abs=1e-6)
    assert fit["cross_rms_arcsec"] < 1e-6 and fit["along_rms_arcsec"] < 1e-6


def test_great_circle_fit_reports_a_kink():
    seconds = np.arange(0, 600, 60.0)
    dec = 40.0 + seconds / 60.0 * 10.0 / 3600.0  # north at 10"/min
    ra = np.full_like(dec, 200.0)
    ra[5] += 1.0 / 3600.0 / np.cos(np.radians(dec[5]))  # one point 1" east of the track
    fit = great_circle_fit(ra, dec, seconds)
    assert fit["position_angle_deg"] == pytest.approx(0.0, abs=2.0) or fit["position_angle_deg"] > 358
    assert np.max(np.abs(fit["cross_residuals_arcsec"])) == pytest.approx(0.9, abs=0.15)


def test_pixel_to_sky_through_the_wcs():
    wcs = make_wcs(150.0, -30.0, 1.2, (100, 120))
    ra, dec = pixel_to_sky(wcs, np.array([59.5]), np.array([49.5]))
    assert ra[0] == pytest.approx(150.0, abs=1e-9) and dec[0] == pytest.approx(-30.0, abs=1e-9)
    assert pixel_scale_arcsec(wcs) == pytest.approx(1.2)
