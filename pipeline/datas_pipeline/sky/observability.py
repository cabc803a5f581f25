"""Is a target observable from a site at one moment? The rule the scheduler and the site agent share.

The server's scheduler plans with :func:`datas_pipeline.sky.windows.constraint_margin` over a
time grid; the agent asks the same question once more just before it slews. Both go through
:func:`observability_at`, which evaluates the very same margin (apparent altitude above the
horizon profile and minimum altitude, hour angle inside its limits, the Sun below the site's
limit, the Moon far enough or set) with the project's vectorised ephemeris, and says which
limit failed. Airmass is Kasten & Young (1989) on the apparent altitude, as everywhere else.

Angles in degrees, hour angles in hours (positive west), times UTC.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.visibility import Observatory, altaz, moon_altaz, moon_separation_deg, sun_altaz
from datas_pipeline.sky.windows import constraint_margin


@dataclass(frozen=True)
class Verdict:
    """Where a target stands at one moment and whether it may be observed (``reason`` says why not).

    ``altitude_deg`` is apparent (refracted), the altitude limits are measured in; ``airmass``
    is ``inf`` below the horizon; ``margin_deg`` is the smallest margin over every limit
    (negative when one fails).
    """

    observable: bool
    altitude_deg: float
    azimuth_deg: float
    hour_angle_h: float
    airmass: float
    sun_altitude_deg: float
    margin_deg: float
    reason: str | None = None


def _reason(observatory: Observatory, alt: float, az: float, ha: float, airmass: float, sun: float,
            moon_alt: float | None, moon_sep: float | None, max_airmass: float | None,
            is_safe: bool | None) -> str | None:
    """The first limit that fails, in the order a person would check them."""
    if is_safe is False:
        return "the site's safety monitor reports unsafe conditions"
    if sun > observatory.sun_limit_deg:
        return f"the Sun is at {sun:.1f} deg (limit {observatory.sun_limit_deg:g})"
    limit = float(observatory.limit_altitude(np.array([az]))[0])
    if alt < limit:
        return f"altitude {alt:.1f} deg is below the limit {limit:.1f} deg at azimuth {az:.0f}"
    if observatory.ha_limits_hours is not None:
        east, west = observatory.ha_limits_hours
        if not east <= ha <= west:
            return f"hour angle {ha:+.2f} h is outside the limits [{east:g}, {west:g}] h"
    if (observatory.min_moon_separation_deg > 0 and moon_sep is not None and moon_alt is not None
            and moon_alt > 0 and moon_sep < observatory.min_moon_separation_deg):
        return f"the Moon is {moon_sep:.0f} deg away (limit {observatory.min_moon_separation_deg:g})"
    if max_airmass is not None and airmass > max_airmass:
        return f"airmass {airmass:.2f} exceeds {max_airmass:g}"
    return None


def observability_at(
    ra_deg: Sequence[float] | np.ndarray,
    dec_deg: Sequence[float] | np.ndarray,
    when: datetime | float,
    observatory: Observatory,
    *,
    max_airmass: float | None = None,
    is_safe: bool | None = None,
) -> list[Verdict]:
    """Observability of ICRS/J2000 targets (degrees) from ``observatory`` at ``when`` (UTC).

    Parameters
    ----------
    ra_deg, dec_deg : array_like, shape (N,)
        Target coordinates, degrees.
    when : datetime or float
        The moment (an aware datetime, or POSIX seconds UTC).
    observatory : Observatory
        The site and its limits (the scheduler's own description of a site).
    max_airmass : float, optional
        An extra limit some sites set (Kasten-Young airmass).
    is_safe : bool, optional
        The safety monitor's answer; ``False`` makes every target unobservable.

    Returns
    -------
    list of Verdict
        One per target, in order.
    """
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    times = np.atleast_1d(eph.to_unix([when] if isinstance(when, datetime) else float(when)))
    lat, lon = np.array([observatory.latitude_deg]), np.array([observatory.longitude_deg])
    cube = altaz(ra, dec, lat, lon, times, pressure_hpa=observatory.pressure,
                 temperature_c=observatory.temperature_c)
    app, az = cube.apparent_altitude_deg[:, 0, :], cube.azimuth_deg[:, 0, :]
    ha, airmass = cube.hour_angle_h[:, 0, :], cube.airmass[:, 0, :]
    sun = sun_altaz(lat, lon, times)[0][0]
    moon_alt = moon_sep = None
    if observatory.min_moon_separation_deg > 0:
        m_alt, _, m_vec = moon_altaz(lat, lon, times, observatory.elevation_m)
        moon_alt, moon_sep = m_alt[0], moon_separation_deg(ra, dec, m_vec[0], float(times[0]))
    margin = constraint_margin(observatory, app, az, ha, sun, moon_alt, moon_sep)
    verdicts = []
    for i in range(ra.size):
        a, z, h, x, s = float(app[i, 0]), float(az[i, 0]), float(ha[i, 0]), float(airmass[i, 0]), float(sun[0])
        reason = _reason(observatory, a, z, h, x, s, None if moon_alt is None else float(moon_alt[0]),
                         None if moon_sep is None else float(moon_sep[i, 0]), max_airmass, is_safe)
        ok = bool(margin[i, 0] >= 0.0) and reason is None
        if not ok and reason is None:  # the margin and the reasons are one rule; say so if they ever part
            reason = f"a limit fails by {-float(margin[i, 0]):.2f} deg"
        verdicts.append(Verdict(ok, a, z, h, x, s, float(margin[i, 0]), reason))
    return verdicts
