"""Is a target observable from this site now? Altitude, local horizon, Sun and safety.

Also the conversion between catalogue (J2000) coordinates and the epoch-of-date (JNow)
coordinates most mounts expect. The agent runs offline at many sites, for years:
``datas_pipeline.sky.timedata`` keeps astropy from downloading and from failing past its tables.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, AltAz, EarthLocation, SkyCoord, get_sun
from astropy.time import Time
from datas_pipeline.sky.timedata import configure_time_data

from datas_agent.config import SafetyConfig, SiteConfig
from datas_agent.drivers.base import J2000, JNOW

# Offline, and working past the bundled tables' end (one warning, never an exception).
configure_time_data()


@dataclass(frozen=True)
class Visibility:
    """Where a target stands now and whether the agent may observe it (``reason`` says why not)."""

    observable: bool
    altitude_deg: float
    azimuth_deg: float
    airmass: float
    sun_altitude_deg: float
    reason: str | None = None


def site_location(site: SiteConfig) -> EarthLocation:
    return EarthLocation.from_geodetic(site.longitude_deg * u.deg, site.latitude_deg * u.deg, site.elevation_m * u.m)


def horizon_altitude(azimuth_deg: np.ndarray | float, horizon: tuple[tuple[float, float], ...]) -> np.ndarray:
    """Minimum altitude (deg) of the local horizon at ``azimuth_deg``, interpolated and wrapped at 360."""
    az = np.asarray(azimuth_deg, dtype=float) % 360.0
    if not horizon:
        return np.zeros_like(az)
    points = np.array(horizon, dtype=float)
    xs = np.concatenate([points[:, 0] - 360.0, points[:, 0], points[:, 0] + 360.0])
    ys = np.tile(points[:, 1], 3)
    return np.interp(az, xs, ys)


def airmass_pickering(altitude_deg: np.ndarray | float) -> np.ndarray:
    """Airmass from apparent altitude (Pickering 2002), finite down to the horizon."""
    h = np.clip(np.asarray(altitude_deg, dtype=float), 0.0, 90.0)
    return 1.0 / np.sin(np.radians(h + 244.0 / (165.0 + 47.0 * h ** 1.1)))


def sun_altitude(when: datetime, site: SiteConfig) -> float:
    time = Time(when)
    frame = AltAz(obstime=time, location=site_location(site))
    return float(get_sun(time).transform_to(frame).alt.deg)


def check_visibility(
    ra_deg: np.ndarray | list[float],
    dec_deg: np.ndarray | list[float],
    when: datetime,
    site: SiteConfig,
    safety: SafetyConfig,
    is_safe: bool | None = None,
) -> list[Visibility]:
    """Visibility of J2000 (ra, dec) targets (degrees) at ``when`` (UTC), all in one transform."""
    time = Time(when)
    frame = AltAz(obstime=time, location=site_location(site))
    altaz = SkyCoord(np.atleast_1d(ra_deg) * u.deg, np.atleast_1d(dec_deg) * u.deg, frame="icrs").transform_to(frame)
    sun_alt = float(get_sun(time).transform_to(frame).alt.deg)
    alt, az = altaz.alt.deg, altaz.az.deg
    limit = np.maximum(horizon_altitude(az, site.horizon), safety.min_altitude_deg)
    airmass = airmass_pickering(alt)
    result = []
    for a, z, lim, x in zip(alt, az, limit, airmass, strict=True):
        reason = None
        if is_safe is False:
            reason = "the site's safety monitor reports unsafe conditions"
        elif sun_alt > safety.max_sun_altitude_deg:
            reason = f"the Sun is at {sun_alt:.1f} deg (limit {safety.max_sun_altitude_deg:g})"
        elif a < lim:
            reason = f"altitude {a:.1f} deg is below the limit {lim:.1f} deg at azimuth {z:.0f}"
        elif safety.max_airmass is not None and x > safety.max_airmass:
            reason = f"airmass {x:.2f} exceeds {safety.max_airmass:g}"
        result.append(Visibility(reason is None, float(a), float(z), float(x) if a > 0 else float("inf"),
                                 sun_alt, reason))
    return result


def to_mount_equinox(ra_deg: float, dec_deg: float, when: datetime, equinox: str) -> tuple[float, float]:
    """Convert J2000 (ra, dec) in degrees to the coordinates a mount expects (``J2000`` or ``JNOW``)."""
    if equinox == J2000:
        return ra_deg, dec_deg
    if equinox != JNOW:
        raise ValueError(f"unknown mount equinox {equinox!r}")
    # Precession to the equinox of date, as INDI and ASCOM "topocentric" mounts expect.
    now = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame=FK5(equinox="J2000")).transform_to(
        FK5(equinox=Time(when)))
    return float(now.ra.deg), float(now.dec.deg)


def from_mount_equinox(ra_deg: float, dec_deg: float, when: datetime, equinox: str) -> tuple[float, float]:
    """The inverse of :func:`to_mount_equinox`: mount coordinates back to J2000 degrees."""
    if equinox == J2000:
        return ra_deg, dec_deg
    j2000 = SkyCoord(ra_deg * u.deg, dec_deg * u.deg, frame=FK5(equinox=Time(when))).transform_to(
        FK5(equinox="J2000"))
    return float(j2000.ra.deg), float(j2000.dec.deg)
