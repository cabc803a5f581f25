"""One scheduling pass over the network: every site's ranked list.

``schedule_network(targets, sites, now)`` decides which sites can observe (active, a fresh
weather report that is not bad, darkness and availability within a day), scores every
(target, site) pair, checks the best ones against every limit, assigns them network-wide
(:mod:`scheduling.assignment`) and writes each site's list with a filter plan, the
window to use and the terms that explain each score.
"""
from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.filters import resolve_filters
from datas_pipeline.sky.visibility import dark_intervals, twilight_sun_altitude

from scheduling import scoring
from scheduling.assignment import LazyGreedy, assign_urgent
from scheduling.candidates import (
    PairFactors,
    RefinedPairs,
    SiteContext,
    SiteGrid,
    bulk_candidates,
    make_context,
    refine_site,
    time_critical_candidates,
)
from scheduling.specs import (
    FilterStep,
    NetworkSchedule,
    ScheduleEntry,
    SchedulingError,
    SiteSchedule,
    SiteSpec,
    TargetSpec,
    iso,
)
from scheduling.tables import SiteTable, TargetTable

# A list starting at dusk is evaluated this long after the twilight edge, so the Sun is
# unambiguously below the limit there.
TWILIGHT_NUDGE_S = 5.0


@dataclass(frozen=True)
class SchedulerConfig:
    """Settings of a pass.

    Attributes
    ----------
    list_length : int
        Entries per site.
    candidates_per_site : int
        Pairs per site checked exactly in the first round (0 = 4 x ``list_length``).
    step_s : float
        Time grid for the exact checks (window ends are bisected to seconds).
    min_window_minutes : float
        Shortest useful window.
    visit_minutes, frame_overhead_s : float
        Size of a visit when a target sets no frame count, and per-frame readout/overhead.
    valid_for_s : float
        How long a list stands (until the next pass).
    usable_weather : frozenset of str
        Weather statuses that allow observing (``unknown``: the site has no sensor and its
        operator opened).
    refill_rounds : int
        Times a site whose candidates were all taken by other sites may look deeper.
    lookahead_s : float
        Sites whose night (or availability) starts later than this get no list yet: what
        they will observe in hours must not block sites that can observe now.
    """

    list_length: int = 50
    candidates_per_site: int = 0
    step_s: float = 600.0
    min_window_minutes: float = 10.0
    visit_minutes: float = 20.0
    frame_overhead_s: float = 5.0
    valid_for_s: float = 300.0
    usable_weather: frozenset[str] = frozenset({"clear", "unknown"})
    refill_rounds: int = 3
    lookahead_s: float = 3600.0
    chunk_targets: int = 16384
    weights: scoring.Weights = field(default_factory=scoring.Weights)

    def __post_init__(self) -> None:
        if self.list_length < 1:
            raise SchedulingError("list_length must be at least 1")
        if self.step_s <= 0 or self.min_window_minutes < 0:
            raise SchedulingError("step_s must be > 0 and min_window_minutes >= 0")


class SiteState(Protocol):
    """What readiness depends on (a :class:`SiteSpec` has it; so may a lighter object)."""

    is_active: bool
    weather: str
    weather_reported_at: float | None
    weather_max_age_s: float


def site_readiness(site: SiteState, now: float, config: SchedulerConfig) -> str:
    """Why a site cannot observe now ('' when it can): inactive, a stale weather report, or
    weather that is not in ``config.usable_weather``.

    A site that has never reported weather (an agent that sends no heartbeat, like the seed
    design's minimal client) is planned as if clear: its operator decides whether to open.
    One that reported and then went quiet is not: its last report has gone stale.
    """
    if not site.is_active:
        return "site is inactive"
    if site.weather_reported_at is None:
        return ""
    age = now - site.weather_reported_at
    if age > site.weather_max_age_s:
        return f"weather report is stale ({age / 60:.0f} min old)"
    if site.weather.lower() not in config.usable_weather:
        return f"weather: {site.weather}"
    return ""


def _first_usable(intervals: list[tuple[float, float]], availability: Sequence[tuple[float, float]] | None,
                  now: float, min_window_s: float) -> tuple[float, float, tuple[float, float]] | None:
    """Reference time, end and night of the first dark (and available) stretch long enough."""
    for night in intervals:
        pieces = [night] if availability is None else [
            (max(night[0], a), min(night[1], b)) for a, b in sorted(availability) if min(night[1], b) > max(night[0], a)]
        for start, end in pieces:
            ref = max(now, start + (TWILIGHT_NUDGE_S if start == night[0] else 0.0))
            if end - ref >= max(min_window_s, 1.0):
                return ref, end, night
    return None


def site_contexts(sites: SiteTable, now: float, config: SchedulerConfig
                  ) -> tuple[list[SiteContext], dict[int, str], dict[int, tuple[float, float]]]:
    """Contexts of the sites that can observe within a day, and reasons for the others."""
    reasons = {i: site_readiness(s, now, config) for i, s in enumerate(sites.specs)}
    ready = [i for i, r in reasons.items() if not r]
    contexts, nights = [], {}
    if not ready:
        return contexts, reasons, nights
    sun_limits = np.array([twilight_sun_altitude(sites.specs[i].twilight) for i in ready])
    dark = dark_intervals(sites.latitude_deg[ready], sites.longitude_deg[ready], now - 16 * 3600.0,
                          now + 86400.0, sun_limits)
    for i, intervals in zip(ready, dark, strict=True):
        spec = sites.specs[i]
        usable = _first_usable([iv for iv in intervals if iv[1] > now], spec.availability, now,
                               config.min_window_minutes * 60.0)
        if usable is None:
            reasons[i] = "no dark, available time in the next 24 h"
            continue
        ref, end, nights[i] = usable
        if ref > now + config.lookahead_s:
            reasons[i] = f"night starts at {iso(ref)}"
            continue
        contexts.append(make_context(i, spec.observatory, ref, end, spec.availability))
    return contexts, reasons, nights


def _recent_share(targets: TargetTable, sites: SiteTable) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (target row x M + site row) keys and the matching shares."""
    m = len(sites)
    site_rows = np.array([sites.index_of.get(s, -1) for s in targets.recent_site], dtype=np.int64)
    known = site_rows >= 0
    keys = targets.recent_target[known] * m + site_rows[known]
    order = np.argsort(keys)
    return keys[order], targets.recent_share[known][order]


def _lookup_share(keys: np.ndarray, shares: np.ndarray, rows: np.ndarray, site_row: int, m: int) -> np.ndarray:
    if keys.size == 0:
        return np.zeros(rows.size)
    wanted = rows * m + site_row
    pos = np.clip(np.searchsorted(keys, wanted), 0, keys.size - 1)
    return np.where(keys[pos] == wanted, shares[pos], 0.0)


def filter_plan(target: TargetSpec, site: SiteSpec, window_s: float, config: SchedulerConfig) -> tuple[FilterStep, ...]:
    """Filters (the site's names), exposure and frames for one visit that fits the window."""
    names = resolve_filters(target.filters, site.filters)
    if target.frames_per_visit:
        count = target.frames_per_visit
    else:
        visit_s = min(config.visit_minutes * 60.0, window_s)
        if target.hours_needed > 0:
            visit_s = min(visit_s, max((target.hours_needed - target.hours_observed) * 3600.0, target.exposure_sec))
        count = max(1, math.floor(visit_s / (len(names) * (target.exposure_sec + config.frame_overhead_s))))
    return tuple(FilterStep(name, target.exposure_sec, count) for name in names)


class _Column:
    """An array that grows by appending, with amortised O(1) appends (capacity doubling)."""

    def __init__(self, dtype: type, fill: float | int | bool = 0) -> None:
        self.data = np.full(1024, fill, dtype=dtype)
        self.size = 0
        self.fill = fill

    def append(self, values: np.ndarray) -> None:
        end = self.size + values.size
        if end > self.data.size:
            grown = np.full(max(end, 2 * self.data.size), self.fill, dtype=self.data.dtype)
            grown[: self.size] = self.data[: self.size]
            self.data = grown
        self.data[self.size:end] = values
        self.size = end


class _Pool:
    """Candidate pairs of a pass; ``exact`` stays NaN until a pair is checked."""

    def __init__(self) -> None:
        self._site, self._target = _Column(np.int32), _Column(np.int64)
        self._exact, self._urgent = _Column(np.float64, np.nan), _Column(np.bool_, False)
        self._part, self._local = _Column(np.int32, -1), _Column(np.int32)
        self.parts: list[RefinedPairs] = []
        self.by_site: dict[int, list[np.ndarray]] = {}

    site = property(lambda self: self._site.data[: self._site.size])
    target = property(lambda self: self._target.data[: self._target.size])
    exact = property(lambda self: self._exact.data[: self._exact.size])
    urgent = property(lambda self: self._urgent.data[: self._urgent.size])
    part = property(lambda self: self._part.data[: self._part.size])
    local = property(lambda self: self._local.data[: self._local.size])

    def add(self, site: int, rows: np.ndarray) -> np.ndarray:
        """Append a site's candidate target rows; returns their pool indices."""
        start, n = self._site.size, rows.size
        self._site.append(np.full(n, site, np.int32))
        self._target.append(rows)
        self._exact.append(np.full(n, np.nan))
        self._urgent.append(np.zeros(n, bool))
        self._part.append(np.full(n, -1, np.int32))
        self._local.append(np.zeros(n, np.int32))
        self.by_site.setdefault(site, []).append(np.asarray(rows, dtype=np.int64))
        return np.arange(start, start + n)

    def examined(self, site: int) -> np.ndarray:
        """Target rows already in the pool for a site."""
        return np.concatenate(self.by_site.get(site, [np.empty(0, np.int64)]))

    def store(self, indices: np.ndarray, refined: RefinedPairs) -> None:
        """Record exact results for pool ``indices`` (aligned with ``refined``)."""
        self.parts.append(refined)
        self.part[indices] = len(self.parts) - 1
        self.local[indices] = np.arange(indices.size)
        self.exact[indices] = refined.score
        self.urgent[indices] = refined.urgent & (refined.score > 0)


def candidates_per_site(contexts: list[SiteContext], config: SchedulerConfig) -> np.ndarray:
    """How many candidates each site needs to fill its list despite its neighbours.

    Sites whose zeniths lie within 45 deg share most of their sky and want the same targets;
    with ``n`` such sites a list of ``K`` unique targets needs about ``K x n`` candidates.
    """
    if config.candidates_per_site:
        return np.full(len(contexts), config.candidates_per_site)
    zenith = np.array([c.zenith for c in contexts]).reshape(len(contexts), 3)
    neighbours = np.count_nonzero(zenith @ zenith.T >= np.cos(np.radians(45.0)), axis=1)
    return config.list_length * np.clip(neighbours + 3, 4, 200)


def schedule_network(targets: Sequence[TargetSpec], sites: Sequence[SiteSpec], now: float,
                     config: SchedulerConfig | None = None) -> NetworkSchedule:
    """Every site's ranked list for the pass at ``now`` (POSIX seconds or an aware datetime).

    Returns
    -------
    NetworkSchedule
        One :class:`SiteSchedule` per site (empty with a ``reason`` when it cannot observe),
        and ``stats`` with the time each stage took (seconds) and pair counts.
    """
    config = config or SchedulerConfig()
    clock = time.perf_counter()
    now = float(eph.to_unix(now))
    target_table = TargetTable.from_specs(targets, now)
    site_table = SiteTable.from_specs(sites)
    stats: dict[str, float] = {"tables_s": time.perf_counter() - clock}
    contexts, reasons, nights = site_contexts(site_table, now, config)
    terms = scoring.target_terms(target_table, now, config.weights)
    target_score = np.prod(np.stack(list(terms.values())), axis=0) if len(target_table) else np.zeros(0)
    factors = PairFactors.prepare(target_table, site_table, now, target_score, config.weights)
    recent_keys, recent_values = _recent_share(target_table, site_table)
    by_index = {c.index: c for c in contexts}
    grids: dict[int, SiteGrid] = {}
    m, min_window_s = len(site_table), config.min_window_minutes * 60.0
    stats.update(setup_s=time.perf_counter() - clock - stats["tables_s"], bulk_s=0.0, refine_s=0.0,
                 assign_s=0.0, pairs_bounded=0.0, pairs_refined=0.0, refills=0.0)
    pool = _Pool()

    def refine(site_row: int, indices: np.ndarray, tc_end: np.ndarray | None = None,
               tc_boost: np.ndarray | None = None) -> np.ndarray:
        tick = time.perf_counter()
        ctx = by_index[site_row]
        grid = grids.get(site_row) or grids.setdefault(site_row, SiteGrid.build(ctx, config.step_s))
        rows = pool.target[indices]
        ends = np.full(indices.size, np.nan) if tc_end is None else tc_end
        boosts = np.ones(indices.size) if tc_boost is None else tc_boost
        share = _lookup_share(recent_keys, recent_values, rows, site_row, m)
        refined = refine_site(factors, ctx, grid, rows, ends, boosts, share, min_window_s)
        pool.store(indices, refined)
        stats["pairs_refined"] += indices.size
        stats["refine_s"] += time.perf_counter() - tick
        return refined.score

    capacity = np.full(m, config.list_length, dtype=np.int64)
    filled = np.zeros(m, dtype=np.int64)
    given = np.zeros(len(target_table), dtype=np.int64)
    taken: set[tuple[int, int]] = set()
    chosen: list[int] = []
    if contexts and len(target_table):
        for ctx in contexts:
            tc_rows, tc_end, tc_boost = time_critical_candidates(factors, ctx)
            if tc_rows.size:
                refine(ctx.index, pool.add(ctx.index, tc_rows), tc_end, tc_boost)
        tick = time.perf_counter()
        urgent = np.flatnonzero(pool.urgent)
        picked = assign_urgent(pool.site[urgent], pool.target[urgent], pool.exact[urgent], capacity,
                               target_table.site_quota, filled, given)
        chosen.extend(urgent[picked].tolist())
        taken.update((int(pool.site[i]), int(pool.target[i])) for i in chosen)
        stats["assign_s"] += time.perf_counter() - tick

        tick = time.perf_counter()
        wanted = candidates_per_site(contexts, config)
        rows, bounds, eligible = bulk_candidates(factors, contexts, int(wanted.max()), None, config.chunk_targets)
        stats["bulk_s"] += time.perf_counter() - tick
        depth = dict(zip([c.index for c in contexts], wanted.tolist(), strict=True))
        refills = dict.fromkeys(depth, 0)

        def refill(site_row: int) -> tuple[np.ndarray, np.ndarray, bool]:
            tick = time.perf_counter()
            refills[site_row] += 1
            depth[site_row] *= 4
            exclude = given >= target_table.site_quota
            exclude[pool.examined(site_row)] = True
            more, more_bounds, eligible_now = bulk_candidates(factors, [by_index[site_row]], depth[site_row],
                                                              exclude, config.chunk_targets)
            stats["bulk_s"] += time.perf_counter() - tick
            stats["refills"] += 1
            beyond = eligible_now[0] > more[0].size and refills[site_row] < config.refill_rounds
            return pool.add(site_row, more[0]), more_bounds[0], bool(beyond)

        greedy = LazyGreedy(refine, refill, lambda: pool.target)
        for ctx, site_rows, site_bounds, count in zip(contexts, rows, bounds, eligible, strict=True):
            keep = slice(0, depth[ctx.index])
            beyond = count > site_rows[keep].size and config.refill_rounds > 0
            greedy.add(ctx.index, pool.add(ctx.index, site_rows[keep]), site_bounds[keep], bool(beyond))
        stats["pairs_bounded"] = float(pool.site.size)
        tick = time.perf_counter()
        inner = stats["refine_s"] + stats["bulk_s"]
        chosen.extend(i for _, i in greedy.run(capacity, target_table.site_quota, filled, given, taken))
        stats["assign_s"] += time.perf_counter() - tick - (stats["refine_s"] + stats["bulk_s"] - inner)
    schedules = _site_schedules(site_table, target_table, pool, chosen, contexts, reasons, nights, terms,
                                now, config)
    stats["total_s"] = time.perf_counter() - clock
    return NetworkSchedule(now, now + config.valid_for_s, schedules, stats)


def _site_schedules(site_table: SiteTable, target_table: TargetTable, pool: _Pool, chosen: list[int],
                    contexts: list[SiteContext], reasons: dict[int, str], nights: dict[int, tuple[float, float]],
                    terms: dict[str, np.ndarray], now: float, config: SchedulerConfig) -> dict:
    per_site: dict[int, list[int]] = {}
    for i in chosen:
        per_site.setdefault(int(pool.site[i]), []).append(i)
    reference = {c.index: c.reference_time for c in contexts}
    schedules = {}
    for s, spec in enumerate(site_table.specs):
        ref = reference.get(s)
        schedule = SiteSchedule(spec.id, spec.name, now, now + config.valid_for_s, ref, nights.get(s),
                                reason=reasons.get(s, ""))
        picks = sorted(per_site.get(s, []), key=lambda i: (not pool.urgent[i], -pool.exact[i]))
        for rank, i in enumerate(picks, start=1):
            schedule.entries.append(_entry(rank, pool.parts[pool.part[i]], int(pool.local[i]), target_table, spec,
                                           ref, terms, config))
        if not schedule.entries and not schedule.reason:
            schedule.reason = "no target observable"
        schedules[spec.id] = schedule
    return schedules


def _entry(rank: int, pairs: RefinedPairs, k: int, targets: TargetTable, site: SiteSpec, ref: float,
           target_terms: dict[str, np.ndarray], config: SchedulerConfig) -> ScheduleEntry:
    row = int(pairs.target[k])
    spec = targets.specs[row]
    window_end = float(pairs.window_end[k])
    terms = {name: float(values[row]) for name, values in target_terms.items()}
    terms.update({name: float(values[k]) for name, values in pairs.terms.items()})
    return ScheduleEntry(
        rank=rank, target_id=spec.id, target_name=spec.name, score=float(pairs.score[k]),
        urgent=bool(pairs.urgent[k]), filter_plan=filter_plan(spec, site, window_end - ref, config),
        window_start=ref, window_end=window_end, best_time=float(pairs.best_time[k]),
        altitude_deg=float(pairs.altitude[k]), best_altitude_deg=float(pairs.best_altitude[k]),
        airmass=float(eph.kasten_young_airmass(pairs.altitude[k])),
        moon_separation_deg=float(pairs.moon_separation[k]), terms=terms,
    )
