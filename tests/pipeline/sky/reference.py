"""astropy as the truth for the visibility tests (offline: the bundled IERS tables)."""
from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import AltAz, EarthLocation, SkyCoord, get_body, get_sun
from astropy.time import Time
from astropy.utils import iers

iers.conf.auto_download = False

# (latitude, east longitude, elevation m): real observatories from -70 to +70 degrees.
SITES = {
    "troll_antarctica": (-72.0, 2.5, 1270.0),  # just past -70 on purpose
    "paranal": (-24.6272, -70.4042, 2635.0),
    "siding_spring": (-31.2733, 149.0617, 1165.0),
    "equator_quito": (-0.1807, -78.4678, 2850.0),
    "mauna_kea": (19.8207, -155.4681, 4205.0),
    "la_palma": (28.7606, -17.8816, 2396.0),
    "kitt_peak": (31.9583, -111.5967, 2096.0),
    "haute_provence": (43.9317, 5.7125, 650.0),
    "tromso": (69.6625, 18.9408, 100.0),
}

# Bright stars, ICRS degrees.
STARS = {
    "Sirius": (101.2872, -16.7161),
    "Vega": (279.2347, 38.7837),
    "Arcturus": (213.9153, 19.1824),
    "Canopus": (95.9880, -52.6957),
    "Betelgeuse": (88.7929, 7.4071),
    "Polaris": (37.9546, 89.2641),
    "Acrux": (186.6496, -63.0991),
}


def location(lat: float, lon: float, elev: float = 0.0) -> EarthLocation:
    return EarthLocation(lat=lat * u.deg, lon=lon * u.deg, height=elev * u.m)


def star_altaz(ra, dec, lat, lon, unix, elev=0.0, pressure_hpa=0.0, temperature_c=10.0):
    """astropy AltAz of stars (N,) at times (T,): (alt, az) degrees shaped (N, T)."""
    frame = AltAz(obstime=Time(np.atleast_1d(unix), format="unix")[None, :], location=location(lat, lon, elev),
                  pressure=pressure_hpa * u.hPa, temperature=temperature_c * u.deg_C, relative_humidity=0.0,
                  obswl=0.55 * u.micron)
    coord = SkyCoord(ra=np.atleast_1d(ra) * u.deg, dec=np.atleast_1d(dec) * u.deg)[:, None]
    aa = coord.transform_to(frame)
    return aa.alt.deg, aa.az.deg


def sun_altitude(lat, lon, unix, elev=0.0):
    times = Time(np.atleast_1d(unix), format="unix")
    aa = get_sun(times).transform_to(AltAz(obstime=times, location=location(lat, lon, elev)))
    return aa.alt.deg


def moon_altaz(lat, lon, unix, elev=0.0):
    times = Time(np.atleast_1d(unix), format="unix")
    loc = location(lat, lon, elev)
    moon = get_body("moon", times, loc)
    aa = moon.transform_to(AltAz(obstime=times, location=loc))
    return aa.alt.deg, aa.az.deg, moon


def moon_illumination(unix):
    times = Time(np.atleast_1d(unix), format="unix")
    sun, moon = get_sun(times), get_body("moon", times)
    elongation = sun.separation(moon).rad
    r_sun, r_moon = sun.distance.km, moon.distance.km
    phase = np.arctan2(r_sun * np.sin(elongation), r_moon - r_sun * np.cos(elongation))
    return (1 + np.cos(phase)) / 2


def crossing(unix_grid, values, level, rising):
    """Linear-interpolated times where ``values`` crosses ``level`` upwards or downwards."""
    d = values - level
    idx = np.flatnonzero((d[:-1] < 0) & (d[1:] >= 0)) if rising else np.flatnonzero((d[:-1] >= 0) & (d[1:] < 0))
    frac = -d[idx] / (d[idx + 1] - d[idx])
    return unix_grid[idx] + frac * (unix_grid[idx + 1] - unix_grid[idx])
