"""Sun, Moon, refraction, airmass and time conversions against astropy and published values."""
import datetime as dt

import numpy as np
import pytest
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky import visibility as vis

from tests.pipeline.sky import reference as ref

YEAR_2026 = eph.to_unix(dt.datetime(2026, 1, 1, tzinfo=dt.UTC)) + np.arange(0, 365, 7.3) * 86400 + 3600 * 5.5


def test_to_unix_accepts_datetimes_strings_and_datetime64():
    expected = 1767225600.0  # 2026-01-01T00:00:00Z
    assert float(eph.to_unix(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))) == expected
    assert float(eph.to_unix(dt.datetime(2026, 1, 1))) == expected  # naive = UTC
    assert float(eph.to_unix("2026-01-01T00:00:00Z")) == expected
    assert float(eph.to_unix(np.datetime64("2026-01-01T00:00:00"))) == expected
    assert eph.to_unix([expected, expected + 1]).tolist() == [expected, expected + 1]


def test_precession_nutation_matches_erfa_pnm80():
    import erfa
    from astropy.time import Time
    for iso in ("2000-01-01T12:00:00", "2026-06-15T00:00:00", "2027-09-30T00:00:00"):
        t = Time(iso, scale="utc")
        ours = eph.precession_nutation_matrix(t.unix)
        assert np.abs(ours - erfa.pnm80(t.tt.jd1, t.tt.jd2)).max() < 0.5 * eph.ARCSEC


@pytest.mark.parametrize("site", ["paranal", "tromso", "equator_quito"])
def test_sun_altitude_within_a_minute_of_arc_of_astropy(site):
    lat, lon, elev = ref.SITES[site]
    times = YEAR_2026[:, None] + np.arange(0, 86400, 3 * 3600)[None, :]
    ours = vis.sun_altaz(lat, lon, times.ravel())[0][0]
    truth = ref.sun_altitude(lat, lon, times.ravel(), elev)
    assert np.abs(ours - truth).max() < 1.5 / 60  # AA low-precision Sun: ~0.01 deg


def test_moon_altitude_separation_and_illumination_against_astropy():
    lat, lon, elev = ref.SITES["la_palma"]
    times = YEAR_2026[::3][:, None] + np.arange(0, 86400, 4 * 3600)[None, :]
    times = times.ravel()
    alt, _, vectors = vis.moon_altaz(lat, lon, times, elev)
    truth_alt, _, truth_moon = ref.moon_altaz(lat, lon, times, elev)
    assert np.abs(alt[0] - truth_alt).max() < 0.5
    # Separation of Vega from the Moon, topocentric, as astropy measures it.
    from astropy import units as u
    from astropy.coordinates import GCRS, SkyCoord
    ra, dec = ref.STARS["Vega"]
    sep = vis.moon_separation_deg([ra], [dec], vectors[0], float(np.median(times)))[0]
    vega = SkyCoord(ra=ra * u.deg, dec=dec * u.deg).transform_to(
        GCRS(obstime=truth_moon.obstime, obsgeoloc=truth_moon.obsgeoloc, obsgeovel=truth_moon.obsgeovel))
    truth_sep = truth_moon.separation(vega).deg
    assert np.abs(sep - truth_sep).max() < 0.5
    illum = eph.moon_illumination(times)
    assert np.abs(illum - ref.moon_illumination(times)).max() < 0.01
    assert illum.min() < 0.1 and illum.max() > 0.9  # weekly samples over a year catch new and full moons


def test_saemundsson_refraction_and_its_switch():
    # Published: about 34' at the horizon, 1' at 45 deg, nothing at the zenith.
    r = eph.refraction_deg(np.array([0.0, 45.0, 90.0])) * 60
    assert r[0] == pytest.approx(29.0, abs=6)  # Saemundsson at true 0 deg (apparent ~0.5 deg)
    assert r[1] == pytest.approx(1.0, abs=0.05)
    assert abs(r[2]) < 0.01
    assert eph.refraction_deg(45.0, pressure_hpa=0.0) == 0.0


def test_kasten_young_airmass_published_values():
    x = eph.kasten_young_airmass(np.array([90.0, 30.0, 10.0, 0.0, -1.0]))
    assert x[0] == pytest.approx(1.0, abs=1e-3)
    assert x[1] == pytest.approx(1.9942, abs=2e-3)  # slightly below sec z = 2
    assert x[2] == pytest.approx(5.60, abs=0.02)
    assert x[3] == pytest.approx(37.92, abs=0.05)
    assert np.isinf(x[4])
