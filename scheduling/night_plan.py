"""Tonight's jobs for one observatory, from exposure goals and what has been observed.

Pure functions (no Django): ``remaining_goals`` subtracts recorded exposure from the goals,
``plan_night`` fits what is missing into the night's observable windows. The writers
(:mod:`scheduling.exports.ekos`, :mod:`~scheduling.exports.nina`,
:mod:`~scheduling.exports.csv_tasking`) turn the jobs into files.
"""
from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from datas_pipeline.sky import ephemeris as eph
from datas_pipeline.sky.filters import band_key, match_filter
from datas_pipeline.sky.visibility import Observatory, night_containing
from datas_pipeline.sky.windows import Window, observable_windows


class TaskingError(ValueError):
    """Goals, a site or a template that cannot be turned into tasking, with what to fix."""


@dataclass(frozen=True)
class ExposureGoal:
    """Total open-shutter time wanted through one filter, in frames of ``exposure_sec``."""

    filter: str
    exposure_sec: float
    total_sec: float

    def __post_init__(self) -> None:
        if self.exposure_sec <= 0 or self.total_sec < 0:
            raise TaskingError(f"filter {self.filter!r}: exposure_sec must be > 0 and total_sec >= 0")


@dataclass(frozen=True)
class TargetGoal:
    """A target and what it needs (ICRS/J2000 degrees)."""

    name: str
    ra_deg: float
    dec_deg: float
    exposures: tuple[ExposureGoal, ...]
    priority: float = 1.0
    group: str = ""
    position_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if not (0.0 <= self.ra_deg < 360.0 and -90.0 <= self.dec_deg <= 90.0):
            raise TaskingError(f"target {self.name!r}: ra must be in [0, 360) and dec in [-90, 90] degrees")

    @property
    def missing_sec(self) -> float:
        """Total exposure still wanted over all filters (seconds)."""
        return sum(e.total_sec for e in self.exposures)


@dataclass(frozen=True)
class RecordedExposure:
    """Exposure already on record: ``count`` frames of ``exposure_sec`` through ``filter``."""

    target_name: str
    filter: str
    exposure_sec: float
    count: int = 1


@dataclass(frozen=True)
class JobStep:
    """``count`` frames of ``exposure_sec`` seconds through ``filter`` (the wheel's exact name)."""

    filter: str
    exposure_sec: float
    count: int


@dataclass(frozen=True)
class TaskingJob:
    """One target's block of tonight: when, where to point and what to take.

    ``start``/``end`` are POSIX seconds (UTC); ``ra_deg``/``dec_deg`` ICRS/J2000.
    """

    name: str
    ra_deg: float
    dec_deg: float
    steps: tuple[JobStep, ...]
    start: float
    end: float
    min_altitude_deg: float
    moon_separation_deg: float = 0.0
    group: str = ""
    priority: float = 1.0
    position_angle_deg: float = 0.0

    @property
    def exposure_sec(self) -> float:
        """Open-shutter time of the job (seconds)."""
        return sum(s.exposure_sec * s.count for s in self.steps)


@dataclass
class TaskingPlan:
    """Jobs in time order, targets left out with the reason, and the night (POSIX s)."""

    jobs: list[TaskingJob]
    unplanned: list[tuple[str, str]] = field(default_factory=list)
    night: tuple[float, float] | None = None


def target_key(name: str) -> str:
    """Name comparison key: case, spaces, underscores and hyphens ignored ("M 31" == "m-31")."""
    return re.sub(r"[\s_\-]+", "", name).casefold()


def remaining_goals(goals: Sequence[TargetGoal], recorded: Iterable[RecordedExposure]) -> list[TargetGoal]:
    """Goals minus what is on record, by target name and filter band; finished targets are dropped."""
    done: dict[tuple[str, str], float] = {}
    for r in recorded:
        key = (target_key(r.target_name), band_key(r.filter))
        done[key] = done.get(key, 0.0) + r.exposure_sec * r.count
    out = []
    for goal in goals:
        exposures = []
        for e in goal.exposures:
            key = (target_key(goal.name), band_key(e.filter))
            used = min(done.get(key, 0.0), e.total_sec)
            done[key] = done.get(key, 0.0) - used
            if e.total_sec - used >= e.exposure_sec * 0.5:
                exposures.append(replace(e, total_sec=e.total_sec - used))
        if exposures:
            out.append(replace(goal, exposures=tuple(exposures)))
    return out


def _free_segments(free: list[tuple[float, float]], window: Window) -> list[tuple[float, float]]:
    return [(max(a, window.start), min(b, window.end)) for a, b in free if min(b, window.end) > max(a, window.start)]


def _take(free: list[tuple[float, float]], start: float, end: float) -> list[tuple[float, float]]:
    out = []
    for a, b in free:
        if b <= start or a >= end:
            out.append((a, b))
            continue
        if a < start:
            out.append((a, start))
        if b > end:
            out.append((end, b))
    return out


def plan_night(goals: Sequence[TargetGoal], observatory: Observatory, site_filters: Sequence[str], when: float,
               *, frame_overhead_s: float = 5.0, min_job_minutes: float = 15.0, max_job_hours: float = 4.0,
               step_s: float = 300.0) -> TaskingPlan:
    """Fit the goals into the night that contains (or follows) ``when`` at one site.

    Targets go in priority order (then the earliest-setting first) into the free part of
    their observable window nearest their best time; each job gets as many frames as fit,
    shared between filters in proportion to what each still needs.

    Parameters
    ----------
    goals : sequence of TargetGoal
        What is still missing (see :func:`remaining_goals`).
    observatory : Observatory
        The site with its limits (altitude, horizon, hour angle, twilight, moon).
    site_filters : sequence of str
        The filter wheel's names; goals are matched to them by band (``Ha`` -> ``H-Alpha``).
    when : float
        POSIX seconds (or a datetime) in or before the night to plan.
    frame_overhead_s : float
        Readout, download and dither per frame.
    min_job_minutes, max_job_hours : float
        Shortest job worth slewing for; longest block one target may take.
    """
    when = float(eph.to_unix(when))
    night = night_containing(observatory, when)
    if night is None:
        return TaskingPlan([], [(g.name, "no darkness at this site in the next 24 h") for g in goals])
    start = max(night[0], when)
    plan = TaskingPlan([], [], (start, night[1]))
    usable: list[tuple[TargetGoal, list[JobStep]]] = []
    for goal in goals:
        steps = []
        for e in goal.exposures:
            name = match_filter(e.filter, site_filters)
            if name is None:
                plan.unplanned.append((goal.name, f"the site has no {e.filter!r} filter (it has {list(site_filters)})"))
                continue
            steps.append(JobStep(name, e.exposure_sec, max(1, math.ceil(e.total_sec / e.exposure_sec))))
        if steps:
            usable.append((goal, steps))
    if not usable or night[1] - start < 60:
        return plan
    windows = observable_windows([g.ra_deg for g, _ in usable], [g.dec_deg for g, _ in usable], [observatory],
                                 start, night[1], step_s=step_s, min_duration_s=min_job_minutes * 60)
    order = sorted(range(len(usable)), key=lambda i: (
        -usable[i][0].priority, min((w.end for w in windows[i][0]), default=np.inf)))
    free = [(start, night[1])]
    for i in order:
        goal, steps = usable[i]
        if not windows[i][0]:
            plan.unplanned.append((goal.name, "not observable tonight within the site's limits"))
            continue
        needed = sum(s.count * (s.exposure_sec + frame_overhead_s) for s in steps)
        best = None
        for window in windows[i][0]:
            for a, b in _free_segments(free, window):
                if b - a >= min_job_minutes * 60 and (best is None or b - a > best[1] - best[0]):
                    best = (a, b, window)
        if best is None:
            plan.unplanned.append((goal.name, "its window is already taken by higher-priority targets"))
            continue
        a, b, window = best
        duration = min(needed, b - a, max_job_hours * 3600)
        job_start = min(max(window.best_time - duration / 2, a), b - duration)
        fitted = _fit_steps(steps, duration, frame_overhead_s)
        if not fitted:
            plan.unplanned.append((goal.name, "not even one frame of each filter fits its window"))
            continue
        job_end = job_start + sum(s.count * (s.exposure_sec + frame_overhead_s) for s in fitted)
        free = _take(free, job_start, job_end)
        plan.jobs.append(TaskingJob(goal.name, goal.ra_deg, goal.dec_deg, tuple(fitted), job_start, job_end,
                                    observatory.min_altitude_deg, observatory.min_moon_separation_deg,
                                    goal.group, goal.priority, goal.position_angle_deg))
    plan.jobs.sort(key=lambda j: j.start)
    return plan


def _fit_steps(steps: list[JobStep], duration_s: float, overhead_s: float) -> list[JobStep]:
    """Frames per filter that fit ``duration_s``, shared in proportion to what each needs."""
    needed = [s.count * (s.exposure_sec + overhead_s) for s in steps]
    scale = min(1.0, duration_s / sum(needed))
    fitted = [replace(s, count=min(s.count, math.floor(s.count * scale))) for s in steps]
    return [s for s in fitted if s.count >= 1]
