"""Fast positional astronomy for scheduling: time, precession-nutation, sidereal time, Sun, Moon.

Pure numpy, no Django. Everything is vectorised and works on arrays of POSIX times (seconds
since 1970-01-01 UTC). The models are the classical closed forms:

* precession IAU 1976 (Lieske), nutation IAU 1980 reduced to its four largest terms
  (Meeus ch. 22, error < 0.5''), annual aberration with the eccentricity term (< 0.1''),
  Greenwich sidereal time (Meeus 12.4) plus the equation of the equinoxes;
* the Sun from the Astronomical Almanac low-precision formulae (0.01 deg);
* the Moon from the Astronomical Almanac low-precision series with topocentric parallax
  (about 0.3 deg), ample for moon-avoidance limits of 10-30 deg.

UTC stands in for UT1 (|DUT1| < 0.9 s, under 0.25' of hour angle) and TT is UTC + 69.184 s.
Together with the omitted diurnal aberration and polar motion, stars come out within a few
arcseconds of astropy's AltAz (the tests check it).
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

DEG = np.pi / 180.0
ARCSEC = DEG / 3600.0
J2000_JD = 2451545.0
UNIX_EPOCH_JD = 2440587.5
# 37 leap seconds + 32.184 s; only the Moon (0.5''/s) notices the exact value.
TT_MINUS_UTC_S = 69.184
SIDEREAL_RATE = 1.00273790935  # sidereal seconds per UT second
ABERRATION_CONSTANT = 20.49552 * ARCSEC
EARTH_EQUATORIAL_RADIUS_KM = 6378.137
EARTH_FLATTENING = 1.0 / 298.257223563
AU_KM = 149597870.7


def to_unix(times: Any) -> np.ndarray:
    """POSIX seconds (float64, UTC) from datetimes, numpy datetime64, ISO strings or numbers.

    Naive datetimes are taken as UTC. A scalar input gives a 0-d array.
    """
    if isinstance(times, dt.datetime):
        stamp = times if times.tzinfo else times.replace(tzinfo=dt.UTC)
        return np.asarray(stamp.timestamp(), dtype=np.float64)
    if isinstance(times, str):
        return to_unix(dt.datetime.fromisoformat(times.replace("Z", "+00:00")))
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        return arr.astype("datetime64[us]").astype(np.int64).astype(np.float64) / 1e6
    if arr.dtype == object:
        return np.vectorize(lambda t: float(to_unix(t)), otypes=[np.float64])(arr)
    return arr.astype(np.float64)


def julian_date(unix_s: np.ndarray | float) -> np.ndarray:
    """Julian date (UTC scale) of POSIX seconds."""
    return np.asarray(unix_s, dtype=np.float64) / 86400.0 + UNIX_EPOCH_JD


def julian_centuries_tt(unix_s: np.ndarray | float) -> np.ndarray:
    """Julian centuries of TT since J2000.0."""
    return (julian_date(unix_s) + TT_MINUS_UTC_S / 86400.0 - J2000_JD) / 36525.0


def _rot1(angle: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, s], [0.0, -s, c]])


def _rot2(angle: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, -s], [0.0, 1.0, 0.0], [s, 0.0, c]])


def _rot3(angle: np.ndarray | float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])


def mean_obliquity(t_cent: np.ndarray | float) -> np.ndarray:
    """Mean obliquity of the ecliptic (radians), IAU 1980 (Meeus 22.2)."""
    t = np.asarray(t_cent)
    return (84381.448 - 46.8150 * t - 0.00059 * t**2 + 0.001813 * t**3) * ARCSEC


def nutation(t_cent: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Nutation in longitude and obliquity (radians): the four largest IAU 1980 terms."""
    t = np.asarray(t_cent)
    omega = (125.04452 - 1934.136261 * t) * DEG
    sun_l = (280.4665 + 36000.7698 * t) * DEG
    moon_l = (218.3165 + 481267.8813 * t) * DEG
    dpsi = (-17.20 * np.sin(omega) - 1.32 * np.sin(2 * sun_l) - 0.23 * np.sin(2 * moon_l)
            + 0.21 * np.sin(2 * omega)) * ARCSEC
    deps = (9.20 * np.cos(omega) + 0.57 * np.cos(2 * sun_l) + 0.10 * np.cos(2 * moon_l)
            - 0.09 * np.cos(2 * omega)) * ARCSEC
    return dpsi, deps


def precession_nutation_matrix(unix_s: float) -> np.ndarray:
    """3x3 matrix taking J2000 (ICRS) unit vectors to the true equator and equinox of date."""
    t = float(julian_centuries_tt(unix_s))
    zeta = (2306.2181 * t + 0.30188 * t**2 + 0.017998 * t**3) * ARCSEC
    z = (2306.2181 * t + 1.09468 * t**2 + 0.018203 * t**3) * ARCSEC
    theta = (2004.3109 * t - 0.42665 * t**2 - 0.041833 * t**3) * ARCSEC
    precession = _rot3(-z) @ _rot2(theta) @ _rot3(-zeta)
    eps0 = float(mean_obliquity(t))
    dpsi, deps = (float(v) for v in nutation(t))
    nut = _rot1(-(eps0 + deps)) @ _rot3(-dpsi) @ _rot1(eps0)
    return nut @ precession


def earth_velocity_over_c(unix_s: float) -> np.ndarray:
    """Earth's orbital velocity / c in the true equatorial frame of date (for annual aberration)."""
    t = float(julian_centuries_tt(unix_s))
    sun_lon = float(sun_ecliptic(unix_s)[0])
    ecc = 0.016708634 - 0.000042037 * t
    perihelion = (102.93735 + 1.71946 * t) * DEG
    vel_ecl = ABERRATION_CONSTANT * np.array([
        np.sin(sun_lon) - ecc * np.sin(perihelion),
        -(np.cos(sun_lon) - ecc * np.cos(perihelion)),
        0.0,
    ])
    eps = float(mean_obliquity(t)) + float(nutation(t)[1])
    return _rot1(-eps) @ vel_ecl


def unit_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray) -> np.ndarray:
    """Cartesian unit vectors, shape (..., 3), of right ascension and declination in degrees."""
    ra = np.asarray(ra_deg, dtype=np.float64) * DEG
    dec = np.asarray(dec_deg, dtype=np.float64) * DEG
    cos_dec = np.cos(dec)
    return np.stack([cos_dec * np.cos(ra), cos_dec * np.sin(ra), np.sin(dec)], axis=-1)


def apparent_vectors(ra_deg: np.ndarray, dec_deg: np.ndarray, epoch_unix: float) -> np.ndarray:
    """Apparent geocentric unit vectors of date (precession, nutation, annual aberration).

    Parameters
    ----------
    ra_deg, dec_deg : array_like
        ICRS/J2000 coordinates in degrees, shape (N,).
    epoch_unix : float
        The date (POSIX seconds). The rotation changes by < 0.01'' over a night, so one epoch
        per scheduling pass is enough.

    Returns
    -------
    ndarray, shape (N, 3)
        Unit vectors in the true equatorial frame of date.
    """
    vectors = unit_vectors(ra_deg, dec_deg) @ precession_nutation_matrix(epoch_unix).T
    vectors = vectors + earth_velocity_over_c(epoch_unix)
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def vectors_to_radec(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right ascension in [0, 360) and declination (degrees) of vectors, shape (..., 3)."""
    x, y, z = vectors[..., 0], vectors[..., 1], vectors[..., 2]
    ra = np.mod(np.arctan2(y, x) / DEG, 360.0)
    dec = np.arctan2(z, np.hypot(x, y)) / DEG
    return ra, dec


def greenwich_sidereal_deg(unix_s: np.ndarray | float) -> np.ndarray:
    """Greenwich apparent sidereal time in degrees [0, 360) (GMST, Meeus 12.4, + equation of equinoxes)."""
    jd = julian_date(unix_s)
    days = jd - J2000_JD
    t = days / 36525.0
    gmst = 280.46061837 + 360.98564736629 * days + 0.000387933 * t**2 - t**3 / 38710000.0
    dpsi, deps = nutation(t)
    equation_of_equinoxes = dpsi * np.cos(mean_obliquity(t) + deps) / DEG
    return np.mod(gmst + equation_of_equinoxes, 360.0)


def local_sidereal_deg(unix_s: np.ndarray | float, longitude_deg: np.ndarray | float) -> np.ndarray:
    """Local apparent sidereal time in degrees; longitude east-positive, broadcast with the times."""
    return np.mod(greenwich_sidereal_deg(unix_s) + np.asarray(longitude_deg), 360.0)


def sun_ecliptic(unix_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sun's apparent ecliptic longitude (rad), obliquity (rad) and distance (AU); AA low precision."""
    n = julian_date(unix_s) + TT_MINUS_UTC_S / 86400.0 - J2000_JD
    mean_lon = (280.460 + 0.9856474 * n) * DEG
    anomaly = (357.528 + 0.9856003 * n) * DEG
    lon = mean_lon + (1.915 * np.sin(anomaly) + 0.020 * np.sin(2 * anomaly)) * DEG
    obliquity = (23.439 - 0.0000004 * n) * DEG
    distance = 1.00014 - 0.01671 * np.cos(anomaly) - 0.00014 * np.cos(2 * anomaly)
    return lon, obliquity, distance


def sun_vectors(unix_s: np.ndarray | float) -> np.ndarray:
    """Geocentric apparent unit vectors of the Sun of date, shape (..., 3)."""
    lon, eps, _ = sun_ecliptic(unix_s)
    return np.stack([np.cos(lon), np.cos(eps) * np.sin(lon), np.sin(eps) * np.sin(lon)], axis=-1)


def moon_geocentric(unix_s: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Moon's geocentric unit vectors of date, shape (..., 3), and distance in Earth radii."""
    t = julian_centuries_tt(unix_s)

    def s(a: float, b: float) -> np.ndarray:
        return np.sin((a + b * t) * DEG)

    def c(a: float, b: float) -> np.ndarray:
        return np.cos((a + b * t) * DEG)

    lon = (218.32 + 481267.881 * t + 6.29 * s(135.0, 477198.87) - 1.27 * s(259.3, -413335.36)
           + 0.66 * s(235.7, 890534.22) + 0.21 * s(269.9, 954397.74) - 0.19 * s(357.5, 35999.05)
           - 0.11 * s(186.5, 966404.03)) * DEG
    lat = (5.13 * s(93.3, 483202.02) + 0.28 * s(228.2, 960400.89) - 0.28 * s(318.3, 6003.15)
           - 0.17 * s(217.6, -407332.21)) * DEG
    parallax = (0.9508 + 0.0518 * c(135.0, 477198.87) + 0.0095 * c(259.3, -413335.36)
                + 0.0078 * c(235.7, 890534.22) + 0.0028 * c(269.9, 954397.74)) * DEG
    eps = mean_obliquity(t)
    ecl = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)], axis=-1)
    ce, se = np.cos(eps)[..., None], np.sin(eps)[..., None]
    equ = np.stack([
        ecl[..., 0],
        ce[..., 0] * ecl[..., 1] - se[..., 0] * ecl[..., 2],
        se[..., 0] * ecl[..., 1] + ce[..., 0] * ecl[..., 2],
    ], axis=-1)
    return equ, 1.0 / np.sin(parallax)


def observer_geocentric(latitude_deg: np.ndarray | float, elevation_m: np.ndarray | float
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Observer's distance from the Earth's axis and from the equator plane, in Earth radii (WGS84)."""
    lat = np.asarray(latitude_deg, dtype=np.float64) * DEG
    height = np.asarray(elevation_m, dtype=np.float64) / 1000.0 / EARTH_EQUATORIAL_RADIUS_KM
    e2 = EARTH_FLATTENING * (2.0 - EARTH_FLATTENING)
    prime_vertical = 1.0 / np.sqrt(1.0 - e2 * np.sin(lat) ** 2)
    rho_cos = (prime_vertical + height) * np.cos(lat)
    rho_sin = (prime_vertical * (1.0 - e2) + height) * np.sin(lat)
    return rho_cos, rho_sin


def moon_topocentric(unix_s: np.ndarray, latitude_deg: np.ndarray, longitude_deg: np.ndarray,
                     elevation_m: np.ndarray | float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Moon's topocentric unit vectors of date and distance (Earth radii).

    All inputs broadcast together; the result has their broadcast shape plus a last axis of 3.
    """
    geo, distance = moon_geocentric(unix_s)
    lst = local_sidereal_deg(unix_s, longitude_deg) * DEG
    rho_cos, rho_sin = observer_geocentric(latitude_deg, elevation_m)
    observer = np.stack(np.broadcast_arrays(rho_cos * np.cos(lst), rho_cos * np.sin(lst), rho_sin), axis=-1)
    topo = geo * distance[..., None] - observer
    topo_distance = np.linalg.norm(topo, axis=-1)
    return topo / topo_distance[..., None], topo_distance


def moon_illumination(unix_s: np.ndarray | float) -> np.ndarray:
    """Illuminated fraction of the Moon's disc, 0 (new) to 1 (full)."""
    moon, moon_distance = moon_geocentric(unix_s)
    sun = sun_vectors(unix_s)
    sun_distance = sun_ecliptic(unix_s)[2] * AU_KM / EARTH_EQUATORIAL_RADIUS_KM
    cos_elongation = np.clip(np.sum(moon * sun, axis=-1), -1.0, 1.0)
    elongation = np.arccos(cos_elongation)
    phase_angle = np.arctan2(sun_distance * np.sin(elongation),
                             moon_distance - sun_distance * cos_elongation)
    return (1.0 + np.cos(phase_angle)) / 2.0


def refraction_deg(true_altitude_deg: np.ndarray, pressure_hpa: np.ndarray | float = 1010.0,
                   temperature_c: np.ndarray | float = 10.0) -> np.ndarray:
    """Atmospheric refraction (degrees) to add to a true altitude (Saemundsson 1986).

    Below -1 deg the value at -1 deg is used: the formula diverges further down, and nothing
    that low is observed. ``pressure_hpa=0`` turns refraction off.
    """
    h = np.maximum(np.asarray(true_altitude_deg, dtype=np.float64), -1.0)
    arcmin = 1.02 / np.tan((h + 10.3 / (h + 5.11)) * DEG)
    scale = (np.asarray(pressure_hpa) / 1010.0) * (283.0 / (273.0 + np.asarray(temperature_c)))
    return arcmin * scale / 60.0


def standard_pressure_hpa(elevation_m: np.ndarray | float) -> np.ndarray:
    """Pressure of the standard atmosphere at an elevation (barometric formula, hPa)."""
    return 1013.25 * np.exp(-np.asarray(elevation_m, dtype=np.float64) / 8434.5)


def kasten_young_airmass(apparent_altitude_deg: np.ndarray) -> np.ndarray:
    """Relative optical airmass (Kasten & Young 1989); ``inf`` below the horizon (37.9 on it)."""
    h = np.asarray(apparent_altitude_deg, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        airmass = 1.0 / (np.sin(h * DEG) + 0.50572 * np.power(np.maximum(h, 0.0) + 6.07995, -1.6364))
    return np.where(h >= 0.0, airmass, np.inf)
