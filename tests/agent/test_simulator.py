"""The simulator backend: a repeatable sky, an exact WCS, and photometry that recovers the truth."""
from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits
from datas_agent.config import load_config
from datas_agent.drivers import backend_class, open_rig
from datas_agent.drivers.base import ExposureRequest
from datas_agent.drivers.simulator import sky_stars
from datas_agent.errors import DriverError
from datas_agent.measure import frame_wcs, measure_frame

from tests.agent.conftest import write_config

RA, DEC = 150.0, 2.2


@pytest.fixture
def rig(tmp_path):
    config = load_config(write_config(tmp_path, "http://127.0.0.1:9"))
    with open_rig(config) as rig:
        rig.mount.slew_to(RA, DEC)  # treat these as JNow; the camera converts back
        yield rig


def test_registry_loads_by_name_and_names_unknown_backends():
    assert backend_class("simulator").name == "simulator"
    with pytest.raises(DriverError, match="unknown hardware backend 'ascom'"):
        backend_class("ascom")


def test_sky_is_repeatable_and_wraps_ra():
    a, b = sky_stars(RA, DEC, 0.5, seed=1), sky_stars(RA, DEC, 0.5, seed=1)
    assert len(a) > 100 and np.array_equal(a.ra, b.ra)
    assert not np.array_equal(a.ra, sky_stars(RA, DEC, 0.5, seed=2).ra)
    wrap = sky_stars(0.2, 10.0, 0.5, seed=1)
    assert (wrap.ra > 359).any() and (wrap.ra < 1).any()
    assert len(sky_stars(0.0, 89.9, 0.5, seed=1)) > 0


def test_frame_has_the_sky_where_the_wcs_says(rig):
    exposure = rig.camera.expose(ExposureRequest(exposure_s=10.0))
    header = fits.Header(exposure.header)
    wcs = frame_wcs(header)
    assert exposure.data.dtype == np.uint16 and exposure.data.shape == (512, 512)
    truth = sky_stars(*wcs.wcs.crval, 0.4, seed=1)
    truth = truth[truth.mag < 13.0]
    x, y = wcs.world_to_pixel_values(truth.ra, truth.dec)
    inside = (x > 10) & (x < 500) & (y > 10) & (y < 500)
    assert inside.sum() >= 3
    from datas_pipeline.detection.extract import extract_sources
    found = extract_sources(exposure.data.astype(np.float32))
    for xi, yi in zip(x[inside], y[inside], strict=True):
        d = np.hypot(found["x"] - xi, found["y"] - yi).min()
        assert d < 0.5, f"no source within 0.5 px of the star at ({xi:.1f}, {yi:.1f})"


def test_ensemble_photometry_recovers_the_target_magnitude(rig):
    target_ra, target_dec = (float(v) for v in frame_wcs(fits.Header(
        rig.camera.expose(ExposureRequest(exposure_s=1.0)).header)).wcs.crval)
    exposure = rig.camera.expose(ExposureRequest(exposure_s=20.0, target_ra_deg=target_ra,
                                                 target_dec_deg=target_dec, target_magnitude=12.3))
    header = fits.Header(exposure.header)
    sky = sky_stars(target_ra, target_dec, 0.3, seed=1)
    wcs = frame_wcs(header)
    x, y = wcs.world_to_pixel_values(sky.ra, sky.dec)
    comps = [{"ra_deg": r, "dec_deg": d, "magnitude": m} for r, d, m, xi, yi in zip(sky.ra, sky.dec, sky.mag, x, y, strict=True)
             if 11.0 < m < 14.5 and 20 < xi < 490 and 20 < yi < 490]
    assert len(comps) >= 3
    m = measure_frame(exposure.data, header, target_ra, target_dec, 20.0, comparison_stars=comps)
    assert m.photometry["method"] == "ensemble"
    assert m.photometry["magnitude"] == pytest.approx(12.3, abs=0.03)
    assert m.photometry["error"] < 0.03
    assert m.astrometry["ra_deg"] == pytest.approx(target_ra, abs=0.5 / 3600)
    assert m.astrometry["dec_deg"] == pytest.approx(target_dec, abs=0.5 / 3600)
    # datas_pipeline.detection.extract derives FWHM from the half-light radius, which Moffat wings inflate by ~20 %.
    assert m.seeing_arcsec == pytest.approx(3.0 * 206.265 * 5.0 / 400, rel=0.3)
    assert "position_assumed" not in m.flags


def test_filter_wheel_names_come_from_the_config_and_bad_names_are_refused(rig):
    assert rig.filter_wheel.names() == ["B", "V", "R"]
    with pytest.raises(DriverError, match="no filter 'Ha'"):
        rig.filter_wheel.select("Ha")

