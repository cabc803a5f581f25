"""Candidate (target, site) pairs: a cheap bound over every pair, then exact checks on the best.

Stage 1 (``bulk_candidates``) scores all N x M pairs at each site's reference time with one
matrix product per block of targets: sin(altitude) = target vector . site zenith. It uses only
limits that can only lower a score when refined (the site's lowest possible horizon, hour
angle), so it is an upper bound, and keeps the best few hundred per site.

Stage 2 (``refine_site``) checks those on a time grid through the night with every limit
(horizon profile, hour angle, twilight, Moon, availability), finds when each window closes
and the best time in it, and computes the exact score and its terms.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from datas_pipeline.sky.ephemeris import DEG
from datas_pipeline.sky.filters import coverage_table
from datas_pipeline.sky.visibility import (
    Observatory,
    bennett_refraction_deg,
    moon_altaz,
    site_frames,
    sun_altaz,
)
from datas_pipeline.sky.windows import TargetVectors, availability_margin, best_before, constraint_margin

from scheduling import scoring
from scheduling.tables import SiteTable, TargetTable


@dataclass
class SiteContext:
    """One usable site during a pass: its limits and the time its list starts."""

    index: int
    observatory: Observatory
    reference_time: float
    window_limit: float
    availability: tuple[tuple[float, float], ...] | None
    zenith: np.ndarray
    lst_deg: float

    @property
    def sin_floor(self) -> float:
        """sin of the lowest geometric altitude this site could ever accept (a bound for stage 1)."""
        lowest = self.observatory.lowest_altitude_deg
        geometric = lowest - float(bennett_refraction_deg(lowest)) * self.observatory.pressure / 1010.0 - 0.01
        return float(np.sin(geometric * DEG))


def make_context(index: int, observatory: Observatory, reference_time: float, window_limit: float,
                 availability: tuple[tuple[float, float], ...] | None) -> SiteContext:
    """A site's context at its reference time (POSIX s)."""
    zenith, _, _, lst = site_frames(observatory.latitude_deg, observatory.longitude_deg, [reference_time])
    return SiteContext(index, observatory, reference_time, window_limit, availability, zenith[0, 0], float(lst[0, 0]))


@dataclass
class PairFactors:
    """Everything per-pair scoring needs, prepared once per pass."""

    targets: TargetTable
    sites: SiteTable
    vectors: TargetVectors
    vectors32: np.ndarray
    target_score: np.ndarray
    coverage: np.ndarray
    coverage_needed: bool
    weights: scoring.Weights

    @classmethod
    def prepare(cls, targets: TargetTable, sites: SiteTable, epoch: float, target_score: np.ndarray,
                weights: scoring.Weights) -> PairFactors:
        """Target vectors of date, per-target score and the filter coverage table."""
        vectors = TargetVectors.from_radec(targets.ra_deg, targets.dec_deg, epoch)
        table = coverage_table(targets.filter_patterns, sites.filter_patterns)
        return cls(targets, sites, vectors, vectors.vectors.astype(np.float32), target_score, table,
                   bool((table < 1).any()), weights)

    def static_terms(self, site_rows: np.ndarray, target_rows: np.ndarray) -> dict[str, np.ndarray]:
        """Magnitude, filter, field-of-view and reliability terms of pairs (broadcasting)."""
        t, s, w = self.targets, self.sites, self.weights
        return {
            "magnitude": scoring.magnitude_term(s.limiting_mag[site_rows], t.magnitude[target_rows], w),
            "filters": self.coverage[t.filter_code[target_rows], s.filter_code[site_rows]],
            "fov": scoring.fov_term(s.fov_arcmin[site_rows], t.size_arcmin[target_rows], w),
            "reliability": scoring.reliability_term(s.reliability[site_rows], w),
        }


def bulk_candidates(factors: PairFactors, contexts: list[SiteContext], per_site: int,
                    exclude: np.ndarray | None = None, chunk: int = 8192
                    ) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """The ``per_site`` best targets of each site by the stage-1 bound.

    Time-critical targets are left out here (see :func:`time_critical_candidates`). Rather
    than sorting 100 million scores, each site keeps those above a threshold: estimated
    from the first block of targets (target order is arbitrary, so a block is a fair
    sample), lowered if too few pass, and the survivors are cut to ``per_site`` at the end.

    Returns
    -------
    rows, bounds : list of ndarray
        Per context, target rows and their upper-bound scores, best first.
    eligible : ndarray of int
        Per context, how many targets passed stage 1 in all.
    """
    t = factors.targets
    k = len(contexts)
    base = np.where(t.time_critical, 0.0, factors.target_score).astype(np.float32)
    if exclude is not None:
        base[exclude] = 0.0
    live_all = np.flatnonzero(base > 0)
    eligible = np.zeros(k, dtype=np.int64)
    threshold = np.zeros(k, dtype=np.float32)
    site_columns = _SiteColumns.gather(factors, contexts)
    kept_site, kept_row, kept_score = [], [], []
    for start in range(0, live_all.size, chunk):
        cols = live_all[start:start + chunk]
        score = _bound_block(factors, site_columns, cols, base)
        positive = score > 0
        eligible += np.count_nonzero(positive, axis=1)
        if start == 0 and live_all.size > per_site:
            # Rank of the per_site-th best, scaled to this block; a quarter lower for safety.
            rank = int(np.clip(per_site * cols.size / live_all.size * 0.75, 1, cols.size))
            threshold = np.partition(score, cols.size - rank, axis=1)[:, cols.size - rank]
        site_idx, col_idx = np.nonzero(positive & (score >= threshold[:, None]))
        kept_site.append(site_idx)
        kept_row.append(cols[col_idx])
        kept_score.append(score[site_idx, col_idx])
    site_all = np.concatenate(kept_site) if kept_site else np.empty(0, np.int64)
    row_all = np.concatenate(kept_row) if kept_row else np.empty(0, np.int64)
    score_all = np.concatenate(kept_score) if kept_score else np.empty(0, np.float32)
    order = np.lexsort((-score_all, site_all))
    site_all, row_all, score_all = site_all[order], row_all[order], score_all[order]
    bounds = np.searchsorted(site_all, np.arange(k + 1))
    rows_out = [row_all[bounds[i]:min(bounds[i + 1], bounds[i] + per_site)] for i in range(k)]
    scores_out = [score_all[bounds[i]:min(bounds[i + 1], bounds[i] + per_site)] for i in range(k)]
    return rows_out, scores_out, eligible


@dataclass
class _SiteColumns:
    """Per-site arrays for stage 1, gathered once per call."""

    zenith: np.ndarray
    floor: np.ndarray
    reliability: np.ndarray
    limiting: np.ndarray | None
    fov: np.ndarray
    filter_code: np.ndarray
    ha_limits: list[tuple[int, float, float, float]]

    @classmethod
    def gather(cls, factors: PairFactors, contexts: list[SiteContext]) -> _SiteColumns:
        rows = np.array([c.index for c in contexts], dtype=np.int64)
        limiting = factors.sites.limiting_mag[rows]
        return cls(
            zenith=np.array([c.zenith for c in contexts], dtype=np.float32).reshape(len(contexts), 3),
            floor=np.array([c.sin_floor for c in contexts], dtype=np.float32)[:, None],
            reliability=scoring.reliability_term(factors.sites.reliability[rows], factors.weights
                                                 ).astype(np.float32)[:, None],
            # An unknown limit never rules a target out: +99 mag.
            limiting=np.nan_to_num(limiting, nan=99.0).astype(np.float32)[:, None]
            if np.isfinite(limiting).any() else None,
            fov=factors.sites.fov_arcmin[rows].astype(np.float32)[:, None],
            filter_code=factors.sites.filter_code[rows][:, None],
            ha_limits=[(i, c.lst_deg, *c.observatory.ha_limits_hours) for i, c in enumerate(contexts)
                       if c.observatory.ha_limits_hours is not None],
        )


def _bound_block(factors: PairFactors, site: _SiteColumns, cols: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Stage-1 upper bounds, shape (sites, len(cols)); 0 where a site cannot see the target now."""
    t, w = factors.targets, factors.weights
    sin_alt = site.zenith @ factors.vectors32[cols].T
    # Pairs below the floor are zeroed below, so sin(alt) needs no clipping at 0 here.
    score = sin_alt * base[cols][None, :] if w.altitude_exponent == 1.0 else (
        scoring.altitude_term(sin_alt, w) * base[cols][None, :])
    score *= site.reliability
    score *= sin_alt >= site.floor
    if site.limiting is not None:
        # An unknown magnitude never rules a target out: -99 mag.
        magnitude = np.nan_to_num(t.magnitude[cols], nan=-99.0).astype(np.float32)[None, :]
        span = np.float32(w.magnitude_headroom + w.magnitude_overshoot)
        term = site.limiting - magnitude
        term += np.float32(w.magnitude_overshoot)
        term /= span
        np.clip(term, 0.0, 1.0, out=term)
        score *= term
    if factors.coverage_needed:
        score *= factors.coverage[t.filter_code[cols][None, :], site.filter_code]
    sized = np.flatnonzero(np.isfinite(t.size_arcmin[cols]))
    if sized.size:
        score[:, sized] *= scoring.fov_term(site.fov, t.size_arcmin[cols[sized]][None, :], w)
    for i, lst, east, west in site.ha_limits:
        ha = (np.mod(lst - factors.vectors.ra_date_deg[cols] + 180.0, 360.0) - 180.0) / 15.0
        score[i] *= (ha >= east) & (ha <= west)
    return score


def time_critical_candidates(factors: PairFactors, context: SiteContext) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time-critical targets in one of their windows at the site's reference time and above its floor.

    Returns target rows, the end of the window each is in, and its boost (the largest, if
    windows overlap).
    """
    t = factors.targets
    if t.tc_target.size == 0:
        return np.empty(0, np.int64), np.empty(0), np.empty(0)
    ref = context.reference_time
    inside = (t.tc_start <= ref) & (ref < t.tc_end) & (factors.target_score[t.tc_target] > 0)
    rows = t.tc_target[inside]
    ends, boosts = t.tc_end[inside], t.tc_boost[inside]
    if rows.size == 0:
        return rows, ends, boosts
    order = np.lexsort((-boosts, rows))
    rows, ends, boosts = rows[order], ends[order], boosts[order]
    first = np.concatenate([[True], rows[1:] != rows[:-1]])
    rows, ends, boosts = rows[first], ends[first], boosts[first]
    up = factors.vectors.vectors[rows] @ context.zenith >= context.sin_floor
    return rows[up], ends[up], boosts[up]


@dataclass
class SiteGrid:
    """A site's time grid from its reference time to the end of its usable night, with the
    site frames, Sun, Moon and availability on it (computed once per pass)."""

    times: np.ndarray
    zenith: np.ndarray
    north: np.ndarray
    east: np.ndarray
    lst_deg: np.ndarray
    sun_altitude: np.ndarray
    moon_altitude: np.ndarray
    moon_vectors: np.ndarray
    availability: np.ndarray | None

    @classmethod
    def build(cls, context: SiteContext, step_s: float) -> SiteGrid:
        """Grid every ``step_s`` seconds, always including both ends."""
        obs, ref, end = context.observatory, context.reference_time, context.window_limit
        times = np.append(np.arange(ref, end, step_s), end) if end > ref else np.array([ref])
        zenith, north, east, lst = site_frames(obs.latitude_deg, obs.longitude_deg, times)
        sun = sun_altaz(obs.latitude_deg, obs.longitude_deg, times)[0][0]
        moon_alt, _, moon_vec = moon_altaz(obs.latitude_deg, obs.longitude_deg, times, obs.elevation_m)
        avail = availability_margin(times, context.availability) if context.availability is not None else None
        return cls(times, zenith[0], north[0], east[0], lst[0], sun, moon_alt[0], moon_vec[0], avail)


@dataclass
class RefinedPairs:
    """Exactly scored pairs of one site, aligned with the rows asked for (score 0 = not observable)."""

    target: np.ndarray
    score: np.ndarray
    urgent: np.ndarray
    window_end: np.ndarray
    best_time: np.ndarray
    altitude: np.ndarray
    best_altitude: np.ndarray
    moon_separation: np.ndarray
    terms: dict[str, np.ndarray]


def refine_site(factors: PairFactors, context: SiteContext, grid: SiteGrid, rows: np.ndarray,
                tc_end: np.ndarray, tc_boost: np.ndarray, recent_share: np.ndarray, min_window_s: float
                ) -> RefinedPairs:
    """Check candidate ``rows`` at one site with every limit and score them exactly.

    ``tc_end``/``tc_boost`` are NaN/1 for targets that are not time-critical;
    ``recent_share`` is each target's share of recent observations made at this site.
    """
    obs, ref, times = context.observatory, context.reference_time, grid.times
    p = factors.vectors.vectors[rows]
    sin_h = p @ grid.zenith.T
    x_n, x_e = p @ grid.north.T, p @ grid.east.T
    alt = np.arctan2(sin_h, np.hypot(x_n, x_e)) / DEG
    az = np.mod(np.arctan2(x_e, x_n) / DEG, 360.0)
    ha = (np.mod(grid.lst_deg[None, :] - factors.vectors.ra_date_deg[rows][:, None] + 180.0, 360.0) - 180.0) / 15.0
    apparent = alt + obs.refraction(alt)
    moon_sep = np.arccos(np.clip(p @ grid.moon_vectors.T, -1.0, 1.0)) / DEG
    margin = constraint_margin(obs, apparent, az, ha, grid.sun_altitude, grid.moon_altitude, moon_sep,
                               grid.availability)
    ok_now = margin[:, 0] >= 0
    closed = margin < 0
    first_bad = np.where(closed.any(axis=1), np.argmax(closed, axis=1), times.size)
    window_end = np.full(rows.size, times[-1])
    cut = ok_now & (first_bad < times.size)
    if cut.any():
        # Linear between grid points: a smooth margin is off by seconds on a 10-minute grid,
        # ample for a list that is replaced every few minutes.
        idx = first_bad[cut]
        before, after = margin[cut, idx - 1], margin[cut, idx]
        window_end[cut] = times[idx - 1] + before / (before - after) * (times[idx] - times[idx - 1])
    urgent = np.isfinite(tc_end)
    window_end = np.where(urgent, np.fmin(window_end, tc_end), window_end)
    keep = ok_now & (window_end - ref >= min_window_s)
    best_t, best_alt = best_before(times, apparent, np.maximum(first_bad, 1))
    best_t = np.clip(best_t, ref, window_end)
    terms = factors.static_terms(np.full(rows.size, context.index), rows)
    terms["altitude"] = scoring.altitude_term(np.sin(alt[:, 0] * DEG), factors.weights)
    terms["urgency"] = np.where(urgent, scoring.urgency_term(np.nan_to_num(tc_boost, nan=1.0),
                                                             (window_end - ref) / 3600.0, factors.weights), 1.0)
    terms["recent_site"] = scoring.recent_site_term(recent_share, factors.weights)
    score = factors.target_score[rows].copy()
    for value in terms.values():
        score = score * value
    return RefinedPairs(
        target=rows, score=np.where(keep, score, 0.0), urgent=urgent, window_end=window_end, best_time=best_t,
        altitude=apparent[:, 0], best_altitude=best_alt, moon_separation=moon_sep[:, 0],
        terms={k: np.broadcast_to(v, rows.shape) for k, v in terms.items()},
    )
