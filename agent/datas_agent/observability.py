"""Is a target observable from this site now? The scheduler's own rule, asked once more before a slew.

:func:`check_visibility` describes the site as the scheduler does (an
:class:`~datas_pipeline.sky.visibility.Observatory`: horizon profile, minimum altitude, hour-angle
limits, the Sun's limit) and asks :func:`datas_pipeline.sky.observability.observability_at`,
the function the server's planning margin is made of, so the agent never refuses what the
scheduler planned, nor slews to what it would not have (tests/test_agent_server_contract.py).
Altitudes are apparent, airmass Kasten-Young, computed with the project's vectorised ephemeris.

Also the conversion between catalogue (J2000) coordinates and the epoch-of-date (JNow)
coordinates most mounts expect, where astropy's FK5 precession is the right tool. The agent
runs offline at many sites, for years: ``datas_pipeline.sky.timedata`` keeps astropy from
downloading and from failing past its tables.
"""
from __future__ import annotations

from datetime import datetime

import astropy.units as u
import numpy as np
from astropy.coordinates import FK5, SkyCoord
from astropy.time import Time
from datas_pipeline.sky.observability import Verdict, observability_at
from datas_pipeline.sky.timedata import configure_time_data
from datas_pipeline.sky.visibility import HorizonProfile, Observatory

from datas_agent.config import SafetyConfig, SiteConfig
from datas_agent.drivers.base import J2000, JNOW

# Offline, and working past the bundled tables' end (one warning, never an exception).
configure_time_data()

# Where a target stands now and whether the agent may observe it (``reason`` says why not).
Visibility = Verdict


def site_observatory(site: SiteConfig, safety: SafetyConfig) -> Observatory:
    """The site and the agent's safety limits as the scheduler describes a site."""
    horizon = HorizonProfile.from_points(site.horizon) if site.horizon else None
    return Observatory(site.latitude_deg, site.longitude_deg, site.elevation_m,
                       min_altitude_deg=safety.min_altitude_deg, horizon=horizon,
                       ha_limits_hours=safety.hour_angle_limits_h,
                       min_moon_separation_deg=safety.min_moon_separation_deg,
                       max_sun_altitude_deg=safety.max_sun_altitude_deg)


def check_visibility(
    ra_deg: np.ndarray | list[float],
    dec_deg: np.ndarray | list[float],
    when: datetime,
    site: SiteConfig,
    safety: SafetyConfig,
    is_safe: bool | None = None,
) -> list[Visibility]:
    """Visibility of J2000 (ra, dec) targets (degrees) at ``when`` (UTC), all at once."""
    return observability_at(ra_deg, dec_deg, when, site_observatory(site, safety), max_airmass=safety.max_airmass,
                            is_safe=is_safe)


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
