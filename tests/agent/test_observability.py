"""Observability: horizon profile, Sun, altitude limits, safety, and J2000 <-> JNow for mounts."""
from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time
from datas_agent.config import SafetyConfig, SiteConfig
from datas_agent.observability import check_visibility, from_mount_equinox, site_observatory, to_mount_equinox
from datas_pipeline.sky.ephemeris import kasten_young_airmass

SITE = SiteConfig(latitude_deg=-30.24, longitude_deg=-70.74, elevation_m=2200,
                  horizon=((10.0, 40.0), (90.0, 20.0), (350.0, 30.0)))
NIGHT = datetime(2026, 11, 21, 5, 0, tzinfo=UTC)  # 02:00 local at Cerro Pachon: Sun far below


def radec_at(alt, az, when=NIGHT, site=SITE):
    loc = EarthLocation.from_geodetic(site.longitude_deg, site.latitude_deg, site.elevation_m)
    c = SkyCoord(alt=alt, az=az, unit="deg", frame=AltAz(obstime=Time(when), location=loc)).icrs
    return c.ra.deg, c.dec.deg


def horizon_altitude(azimuth_deg, horizon, min_altitude_deg=0.0):
    """The agent's altitude limit at an azimuth: the scheduler's Observatory built from its config."""
    observatory = site_observatory(SiteConfig(0.0, 0.0, horizon=horizon), SafetyConfig(min_altitude_deg=min_altitude_deg))
    return float(observatory.limit_altitude(np.array([azimuth_deg]))[0])


def test_horizon_interpolates_and_wraps_at_north():
    assert horizon_altitude(50.0, SITE.horizon) == pytest.approx(30.0)
    assert horizon_altitude(0.0, SITE.horizon) == pytest.approx(35.0)   # between 350 (30) and 10 (40)
    assert horizon_altitude(359.0, SITE.horizon) == pytest.approx(34.5)
    assert horizon_altitude(180.0, ()) == 0.0


def test_airmass_is_one_at_zenith_and_finite_at_the_horizon():
    # Kasten-Young on the apparent altitude: the one airmass of the agent and the scheduler.
    assert kasten_young_airmass(90.0) == pytest.approx(1.0, abs=5e-4)  # the fit gives 0.9997 at the zenith
    assert kasten_young_airmass(30.0) == pytest.approx(1.995, abs=0.01)
    assert 30 < kasten_young_airmass(0.0) < 45


def test_visibility_reasons():
    safety = SafetyConfig(min_altitude_deg=25.0, max_sun_altitude_deg=-12.0, max_airmass=1.8)
    high, horizon_blocked, low, airmass = (radec_at(80, 200), radec_at(33, 20), radec_at(15, 200),
                                           radec_at(31, 200))
    ras, decs = zip(high, horizon_blocked, low, airmass, strict=True)
    v = check_visibility(ras, decs, NIGHT, SITE, safety)
    assert v[0].observable and v[0].altitude_deg == pytest.approx(80, abs=0.05) and v[0].sun_altitude_deg < -30
    assert not v[1].observable and "below the limit 37.5 deg at azimuth 20" in v[1].reason   # local horizon, not min_altitude
    assert not v[2].observable and "below the limit 25.0" in v[2].reason
    assert not v[3].observable and "airmass" in v[3].reason
    unsafe = check_visibility([high[0]], [high[1]], NIGHT, SITE, safety, is_safe=False)[0]
    assert not unsafe.observable and "unsafe" in unsafe.reason
    noon = datetime(2026, 11, 21, 17, 0, tzinfo=UTC)
    day = check_visibility([high[0]], [high[1]], noon, SITE, safety)[0]
    assert day.sun_altitude_deg > 60
    assert not day.observable and "the Sun is at" in day.reason


def test_jnow_conversion_precesses_and_round_trips():
    when = datetime(2026, 11, 21, tzinfo=UTC)
    ra, dec = to_mount_equinox(83.8221, -5.3911, when, "JNOW")  # M 42
    # 26.9 yr x (3.075 + 1.336 sin(ra) tan(dec)) s/yr = 79 s of RA = 0.330 deg.
    assert ra - 83.8221 == pytest.approx(0.330, abs=0.003)
    assert abs(dec + 5.3911) < 0.05
    back = from_mount_equinox(ra, dec, when, "JNOW")
    assert np.allclose(back, (83.8221, -5.3911), atol=1e-7)
    assert to_mount_equinox(10.0, 20.0, when, "J2000") == (10.0, 20.0)
