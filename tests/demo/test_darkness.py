"""Darkness at a site: the Sun's altitude (the pipeline's ephemeris) against the Astronomical Almanac's formula."""
from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from demo.darkness import darkness_outlook, sun_altitudes


def almanac_sun_altitude(lat_deg: float, lon_deg: float, when: datetime) -> float:
    """The Sun's altitude (deg) by the Astronomical Almanac's low-precision formulae (0.01 deg, 1950-2050)."""
    n = (when - datetime(2000, 1, 1, 12, tzinfo=UTC)).total_seconds() / 86400.0
    mean_longitude = math.radians(280.460 + 0.9856474 * n)
    anomaly = math.radians(357.528 + 0.9856003 * n)
    ecliptic_longitude = mean_longitude + math.radians(1.915 * math.sin(anomaly) + 0.020 * math.sin(2 * anomaly))
    obliquity = math.radians(23.439 - 0.0000004 * n)
    ra = math.atan2(math.cos(obliquity) * math.sin(ecliptic_longitude), math.cos(ecliptic_longitude))
    dec = math.asin(math.sin(obliquity) * math.sin(ecliptic_longitude))
    sidereal = math.radians((18.697374558 + 24.06570982441908 * n) * 15.0 + lon_deg)
    lat = math.radians(lat_deg)
    return math.degrees(math.asin(math.sin(lat) * math.sin(dec) + math.cos(lat) * math.cos(dec)
                                  * math.cos(sidereal - ra)))


SITES = [(28.76, -17.88, 2326.0), (-31.27, 149.06, 1165.0), (49.91, 14.78, 528.0), (0.0, 0.0, 0.0),
         (-89.0, 45.0, 2800.0)]


def test_sun_altitudes_match_the_almanac_at_every_site_and_hour():
    start = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    lat, lon, elevation = (np.array(column) for column in zip(*SITES, strict=True))
    offsets_h, altitude = sun_altitudes(lat, lon, elevation, start, hours=24.0, step_minutes=60.0)
    assert altitude.shape == (25, len(SITES))
    for i, hours in enumerate(offsets_h):
        when = start + timedelta(hours=float(hours))
        expected = [almanac_sun_altitude(la, lo, when) for la, lo, _ in SITES]
        np.testing.assert_allclose(altitude[i], expected, atol=0.05)


def test_the_equator_at_the_march_equinox_from_noon():
    # The Sun culminates near the zenith; dark (Sun below -12 deg) comes ~6.8 h after noon.
    noon = datetime(2026, 3, 20, 12, 7, tzinfo=UTC)  # apparent noon at longitude 0 (equation of time)
    (day,) = darkness_outlook([0.0], [0.0], [0.0], noon)
    assert not day.dark_now and day.sun_altitude_deg > 88.0
    assert day.hours_until_dark == pytest.approx(12.0 / 15.0 + 6.0, abs=0.1)
    assert day.dark_hours == pytest.approx(24.0 - 2 * (6.0 + 12.0 / 15.0), abs=0.2)
    (night,) = darkness_outlook([0.0], [180.0], [0.0], noon)
    assert night.dark_now and night.hours_until_dark == 0.0
    assert night.dark_hours == pytest.approx(5.2, abs=0.1)  # until ~48 min before sunrise
    assert night.sun_altitude_deg < -88.0


def test_polar_summer_has_no_darkness_and_polar_winter_no_end():
    solstice = datetime(2026, 6, 21, 0, 0, tzinfo=UTC)
    (summer,) = darkness_outlook([80.0], [10.0], [0.0], solstice)
    assert not summer.dark_now and math.isinf(summer.hours_until_dark) and summer.dark_hours == 0.0
    (winter,) = darkness_outlook([-80.0], [10.0], [0.0], solstice, window_h=36.0)
    assert winter.dark_now and winter.dark_hours == pytest.approx(36.0, abs=0.1)
