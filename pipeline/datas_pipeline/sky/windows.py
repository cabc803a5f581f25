"""Observable windows and best times for targets at sites, from each site's limits.

Every limit becomes a signed *margin* in degrees (positive = allowed) on a time grid: apparent
altitude above the horizon profile and minimum altitude, hour angle inside its limits (15 deg
per hour), the Sun below the site's twilight altitude, the Moon far enough or set, the site
available (15 deg per hour of distance to the nearest edge). A target is observable where the
smallest margin is >= 0; window edges are then bisected on the exact margin, so a coarse grid
still gives edges good to a fraction of a second.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.ephemeris import DEG
from datas_pipeline.sky.visibility import (
    Observatory,
    VisibilityError,
    altaz,
    moon_altaz,
    moon_separation_deg,
    refine_crossings,
    runs,
    site_frames,
    sun_altaz,
)

# Margins are compared in degrees; time distances convert at the sky's rate, 15 deg per hour.
DEG_PER_SECOND = 15.0 / 3600.0
FAR = 1.0e6


@dataclass(frozen=True)
class Window:
    """An interval when a target is observable from a site (POSIX seconds, UTC).

    ``best_time`` is when the target stands highest inside the window, at apparent altitude
    ``best_altitude_deg`` and Kasten-Young airmass ``best_airmass``.
    """

    start: float
    end: float
    best_time: float
    best_altitude_deg: float
    best_airmass: float

    @property
    def duration_s(self) -> float:
        """Length of the window (seconds)."""
        return self.end - self.start


def availability_margin(times: np.ndarray, intervals: Sequence[tuple[float, float]] | None) -> np.ndarray:
    """Signed distance (as degrees at 15 deg/h) from ``times`` to the edge of the nearest interval.

    ``None`` means always available.
    """
    times = np.asarray(times, dtype=np.float64)
    if intervals is None:
        return np.full(times.shape, FAR)
    if len(intervals) == 0:
        return np.full(times.shape, -FAR)
    starts = np.array([a for a, _ in intervals], dtype=np.float64)
    ends = np.array([b for _, b in intervals], dtype=np.float64)
    inside = np.minimum(times[..., None] - starts, ends - times[..., None])
    return inside.max(axis=-1) * DEG_PER_SECOND


def constraint_margin(observatory: Observatory, apparent_altitude_deg: np.ndarray, azimuth_deg: np.ndarray,
                      hour_angle_h: np.ndarray, sun_altitude_deg: np.ndarray,
                      moon_altitude_deg: np.ndarray | None = None, moon_separation: np.ndarray | None = None,
                      availability: np.ndarray | None = None) -> np.ndarray:
    """The smallest margin (degrees) over every limit of one site; shape of the target arrays.

    Parameters
    ----------
    observatory : Observatory
        The site and its limits.
    apparent_altitude_deg, azimuth_deg, hour_angle_h : ndarray, shape (N, T)
        Of the targets at this site.
    sun_altitude_deg, moon_altitude_deg : ndarray, shape (T,)
        Geometric altitudes of the Sun's and Moon's centres.
    moon_separation : ndarray, shape (N, T), optional
        Target-Moon distance (degrees); ignored when the site sets no moon limit.
    availability : ndarray, shape (T,), optional
        From :func:`availability_margin`.
    """
    margin = apparent_altitude_deg - observatory.limit_altitude(azimuth_deg)
    if observatory.ha_limits_hours is not None:
        east, west = observatory.ha_limits_hours
        margin = np.minimum(margin, 15.0 * np.minimum(hour_angle_h - east, west - hour_angle_h))
    dark = observatory.sun_limit_deg - np.asarray(sun_altitude_deg)
    margin = np.minimum(margin, dark)
    if observatory.min_moon_separation_deg > 0 and moon_separation is not None and moon_altitude_deg is not None:
        moon_ok = np.maximum(moon_separation - observatory.min_moon_separation_deg, -np.asarray(moon_altitude_deg))
        margin = np.minimum(margin, moon_ok)
    if availability is not None:
        margin = np.minimum(margin, availability)
    return margin


@dataclass(frozen=True)
class TargetVectors:
    """Targets' apparent unit vectors of date (N, 3) and right ascensions of date (degrees)."""

    vectors: np.ndarray
    ra_date_deg: np.ndarray

    @classmethod
    def from_radec(cls, ra_deg: np.ndarray, dec_deg: np.ndarray, epoch_unix: float) -> TargetVectors:
        """From ICRS coordinates (degrees) at a POSIX epoch."""
        vectors = eph.apparent_vectors(np.atleast_1d(ra_deg), np.atleast_1d(dec_deg), epoch_unix)
        return cls(vectors, eph.vectors_to_radec(vectors)[0])


def margin_at(observatory: Observatory, targets: TargetVectors, rows: np.ndarray, times: np.ndarray,
              availability: Sequence[tuple[float, float]] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Margin and apparent altitude (degrees) of targets ``rows`` at ``times``, pair by pair.

    For refining edges and checking a few (target, time) pairs without a full grid.
    """
    rows, times = np.atleast_1d(rows), np.atleast_1d(np.asarray(times, dtype=np.float64))
    zenith, north, east, lst = site_frames(observatory.latitude_deg, observatory.longitude_deg, times)
    p = targets.vectors[rows]
    sin_h = np.sum(p * zenith[0], axis=-1)
    x_n, x_e = np.sum(p * north[0], axis=-1), np.sum(p * east[0], axis=-1)
    alt = np.arctan2(sin_h, np.hypot(x_n, x_e)) / DEG
    az = np.mod(np.arctan2(x_e, x_n) / DEG, 360.0)
    ha = (np.mod(lst[0] - targets.ra_date_deg[rows] + 180.0, 360.0) - 180.0) / 15.0
    apparent = alt + observatory.refraction(alt)
    sun_alt = sun_altaz(observatory.latitude_deg, observatory.longitude_deg, times)[0][0]
    moon_alt = moon_sep = None
    if observatory.min_moon_separation_deg > 0:
        moon_alt, _, moon_vec = moon_altaz(observatory.latitude_deg, observatory.longitude_deg, times,
                                           observatory.elevation_m)
        moon_alt = moon_alt[0]
        moon_sep = np.arccos(np.clip(np.sum(p * moon_vec[0], axis=-1), -1.0, 1.0)) / DEG
    avail = availability_margin(times, availability) if availability is not None else None
    margin = constraint_margin(observatory, apparent, az, ha, sun_alt, moon_alt, moon_sep, avail)
    return margin, apparent


def refine_edges(observatory: Observatory, targets: TargetVectors, rows: np.ndarray, lo: np.ndarray,
                 hi: np.ndarray, availability: Sequence[tuple[float, float]] | None = None,
                 iterations: int = 12) -> np.ndarray:
    """Bisect each (row, [lo, hi]) bracket to where the margin changes sign (5 min / 2**12 = 0.07 s)."""
    if len(rows) == 0:
        return np.empty(0)
    return refine_crossings(lambda t: margin_at(observatory, targets, rows, t, availability)[0],
                            lo, hi, iterations)


def best_in_run(times: np.ndarray, altitude: np.ndarray, first: int, last: int) -> tuple[float, float]:
    """Time and altitude of the highest point of ``altitude[first:last]`` (parabolic refinement)."""
    k = first + int(np.argmax(altitude[first:last]))
    if first < k < last - 1:
        y0, y1, y2 = altitude[k - 1], altitude[k], altitude[k + 1]
        curvature = y0 - 2 * y1 + y2
        if curvature < 0:
            shift = 0.5 * (y0 - y2) / curvature
            step = times[k + 1] - times[k]
            return float(times[k] + shift * step), float(y1 - 0.25 * (y0 - y2) * shift)
    return float(times[k]), float(altitude[k])


def best_before(times: np.ndarray, altitude: np.ndarray, stop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row, time and altitude of the highest point of ``altitude[row, :stop[row]]`` (vectorised)."""
    n, t = altitude.shape
    masked = np.where(np.arange(t)[None, :] < stop[:, None], altitude, -np.inf)
    k = np.argmax(masked, axis=1)
    rows = np.arange(n)
    best_t, best_alt = times[k].astype(np.float64), altitude[rows, k].astype(np.float64)
    inner = (k > 0) & (k < stop - 1)
    if inner.any():
        r, kk = rows[inner], k[inner]
        y0, y1, y2 = altitude[r, kk - 1], altitude[r, kk], altitude[r, kk + 1]
        curvature = y0 - 2 * y1 + y2
        ok = curvature < 0
        shift = np.where(ok, 0.5 * (y0 - y2) / np.where(ok, curvature, -1.0), 0.0)
        best_t[r] = times[kk] + shift * (times[kk + 1] - times[kk])
        best_alt[r] = y1 - 0.25 * (y0 - y2) * shift
    return best_t, best_alt


def windows_from_margin(times: np.ndarray, margin: np.ndarray, apparent_altitude: np.ndarray,
                        edge_times: Callable[[np.ndarray, np.ndarray], np.ndarray] | None = None,
                        min_duration_s: float = 0.0) -> list[list[Window]]:
    """Turn margins (N, T) on a time grid into each row's observable windows.

    ``edge_times(rows, index_before)`` places each edge between grid points ``index_before``
    and ``index_before + 1``; by default it is at the grid point inside the window.
    """
    out: list[list[Window]] = [[] for _ in range(margin.shape[0])]
    rows, firsts, lasts = runs(margin >= 0)
    n_times = times.size
    inner_start = firsts > 0
    inner_end = lasts < n_times
    edge_rows = np.concatenate([rows[inner_start], rows[inner_end]])
    edge_index = np.concatenate([firsts[inner_start] - 1, lasts[inner_end] - 1])
    if edge_times is not None and edge_rows.size:
        placed = edge_times(edge_rows, edge_index)
    else:
        placed = np.concatenate([times[firsts[inner_start]], times[lasts[inner_end] - 1]])
    starts = np.full(rows.size, times[0])
    ends = np.full(rows.size, times[-1])
    starts[inner_start] = placed[: int(inner_start.sum())]
    ends[inner_end] = placed[int(inner_start.sum()):]
    for row, first, last, start, end in zip(rows, firsts, lasts, starts, ends, strict=True):
        if end - start < min_duration_s:
            continue
        best_t, best_alt = best_in_run(times, apparent_altitude[row], first, last)
        best_t = min(max(best_t, start), end)
        airmass = float(eph.kasten_young_airmass(best_alt))
        out[row].append(Window(float(start), float(end), best_t, best_alt, airmass))
    return out


def observable_windows(ra_deg: np.ndarray, dec_deg: np.ndarray, observatories: Sequence[Observatory],
                       start: float, end: float, *, step_s: float = 300.0,
                       availability: Sequence[Sequence[tuple[float, float]] | None] | None = None,
                       min_duration_s: float = 0.0) -> list[list[list[Window]]]:
    """Observable windows of every target from every site between ``start`` and ``end``.

    Parameters
    ----------
    ra_deg, dec_deg : array_like, shape (N,)
        ICRS/J2000 coordinates (degrees).
    observatories : sequence of Observatory
        The M sites with their limits (altitude, horizon, hour angle, twilight, moon).
    start, end : float or datetime
        The period (POSIX seconds UTC, or aware datetimes), e.g. one night.
    step_s : float
        Grid step; window edges are interpolated between grid points.
    availability : sequence of interval lists, optional
        Per site, the (start, end) POSIX intervals the site is available; ``None`` = always.
    min_duration_s : float
        Drop windows shorter than this.

    Returns
    -------
    list
        ``result[target][site]`` is a list of :class:`Window` in time order.
    """
    start, end = float(eph.to_unix(start)), float(eph.to_unix(end))
    if not end > start:
        raise VisibilityError(f"the period must end after it starts ({start} >= {end})")
    if step_s <= 0:
        raise VisibilityError("the grid step must be positive")
    ra = np.atleast_1d(np.asarray(ra_deg, dtype=np.float64))
    dec = np.atleast_1d(np.asarray(dec_deg, dtype=np.float64))
    grid = np.append(np.arange(start, end, step_s), end)
    lat = np.array([o.latitude_deg for o in observatories])
    lon = np.array([o.longitude_deg for o in observatories])
    elev = np.array([o.elevation_m for o in observatories])
    pressure = np.array([o.pressure for o in observatories])
    cube = altaz(ra, dec, lat, lon, grid, pressure_hpa=pressure)
    sun_alt = sun_altaz(lat, lon, grid)[0]
    moon_alt, _, moon_vec = moon_altaz(lat, lon, grid, elev)
    needs_moon = any(o.min_moon_separation_deg > 0 for o in observatories)
    moon_sep = moon_separation_deg(ra, dec, moon_vec, float(np.median(grid))) if needs_moon else None
    targets = TargetVectors.from_radec(ra, dec, float(np.median(grid)))
    result: list[list[list[Window]]] = [[[] for _ in observatories] for _ in range(ra.size)]
    for j, observatory in enumerate(observatories):
        site_availability = availability[j] if availability is not None else None
        avail = availability_margin(grid, site_availability) if site_availability is not None else None
        margin = constraint_margin(
            observatory, cube.apparent_altitude_deg[:, j], cube.azimuth_deg[:, j], cube.hour_angle_h[:, j],
            sun_alt[j], moon_alt[j], None if moon_sep is None else moon_sep[:, j], avail)

        def edges(rows: np.ndarray, index: np.ndarray, observatory: Observatory = observatory,
                  site_availability: Sequence[tuple[float, float]] | None = site_availability) -> np.ndarray:
            return refine_edges(observatory, targets, rows, grid[index], grid[index + 1], site_availability)

        site_windows = windows_from_margin(grid, margin, cube.apparent_altitude_deg[:, j], edges, min_duration_s)
        for i, windows in enumerate(site_windows):
            result[i][j] = windows
    return result


def best_time(windows: Sequence[Window]) -> Window | None:
    """The window whose best point is highest (``None`` when there is none)."""
    return max(windows, key=lambda w: w.best_altitude_deg, default=None)
