"""When it is dark at a site: the Sun's altitude over the coming hours, for many sites at once.

Plain functions over arrays (no Django). Used to pick which demo sites get simulated agents,
so the agents really observe; the agent itself applies the same Sun limit before each frame.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
from datas_pipeline.sky.visibility import sun_altaz

# Nautical twilight: the site agent's default ``safety.max_sun_altitude_deg``.
SUN_LIMIT_DEG = -12.0


@dataclass(frozen=True)
class Darkness:
    """A site's darkness outlook from one instant.

    Attributes
    ----------
    dark_now : bool
        The Sun is below the limit now.
    hours_until_dark : float
        Hours until the Sun next goes below the limit (0 when dark now; ``inf`` when it does
        not within the window looked at, as in a polar summer).
    dark_hours : float
        Length of the current dark spell from now, or of the next one, in hours (capped by
        the window looked at; 0 when there is none).
    sun_altitude_deg : float
        The Sun's altitude now, degrees.
    """

    dark_now: bool
    hours_until_dark: float
    dark_hours: float
    sun_altitude_deg: float


def sun_altitudes(latitude_deg: np.ndarray, longitude_deg: np.ndarray, elevation_m: np.ndarray,
                  start: datetime, hours: float, step_minutes: float = 5.0) -> tuple[np.ndarray, np.ndarray]:
    """The Sun's apparent altitude at each site on a regular time grid.

    Parameters
    ----------
    latitude_deg, longitude_deg, elevation_m : array_like, shape (N,)
        Sites: geodetic latitude (degrees north), longitude (degrees east), height (metres).
    start : datetime
        First instant of the grid (timezone-aware, or naive UTC).
    hours : float
        Length of the grid, hours.
    step_minutes : float
        Grid spacing, minutes.

    Returns
    -------
    offsets_h : ndarray, shape (T,)
        Hours after ``start`` of each grid point.
    altitude_deg : ndarray, shape (T, N)
        The Sun's geometric altitude (degrees, no refraction) at each grid point and site;
        ``elevation_m`` is accepted for the callers but moves it by far less than a degree.
    """
    offsets_h = np.arange(0.0, hours + 1e-9, step_minutes / 60.0)
    start_unix = (start if start.tzinfo else start.replace(tzinfo=UTC)).timestamp()
    # The pipeline's numpy ephemeris (the scheduler's): astropy's AltAz cost ~50 ms a call.
    altitude, _ = sun_altaz(np.atleast_1d(latitude_deg), np.atleast_1d(longitude_deg),
                            start_unix + offsets_h * 3600.0)
    return offsets_h, np.asarray(altitude).T


def darkness_outlook(latitude_deg: np.ndarray, longitude_deg: np.ndarray, elevation_m: np.ndarray,
                     now: datetime, sun_limit_deg: float = SUN_LIMIT_DEG, window_h: float = 36.0,
                     step_minutes: float = 5.0) -> list[Darkness]:
    """Whether each site is dark now, and when and for how long it will be.

    Parameters
    ----------
    latitude_deg, longitude_deg, elevation_m : array_like, shape (N,)
        Sites, as in `sun_altitudes`.
    now : datetime
        The instant to look from (UTC).
    sun_limit_deg : float
        Dark means the Sun below this altitude, degrees.
    window_h : float
        How far ahead to look, hours (36 h always holds a whole night outside polar regions).
    step_minutes : float
        Time resolution of the answer, minutes.

    Returns
    -------
    list of Darkness
        One per site, in input order.
    """
    offsets_h, altitude = sun_altitudes(latitude_deg, longitude_deg, elevation_m, now, window_h, step_minutes)
    step_h = step_minutes / 60.0
    outlook = []
    for column in altitude.T:
        dark = column < sun_limit_deg
        if not dark.any():
            outlook.append(Darkness(False, math.inf, 0.0, float(column[0])))
            continue
        first = int(np.argmax(dark))
        light_after = np.flatnonzero(~dark[first:])
        length = (light_after[0] if light_after.size else dark.size - first) * step_h
        outlook.append(Darkness(bool(dark[0]), float(offsets_h[first]), float(length), float(column[0])))
    return outlook
