"""Coverage of a target list by the archive, and tasking for exactly what is missing.

A target list (CSV, one row per target and filter) gives each target a position, a radius
within which its panels lie, and per filter an exposure time and an integration goal. The
network's lights around each target are clustered into panels
(:func:`observations.archive.clusters.cluster_lights`); per panel and filter the good
exposure (lights the grading did not reject) is summed and compared with the goal. Every
panel and filter short of its goal becomes a step of a job at the panel's centre and
rotation, written by the existing tasking writers (KStars/Ekos, N.I.N.A., CSV).
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass, field

from datas_pipeline.io.headers import parse_angle
from datas_pipeline.sky.filters import band_key, match_filter

from network.models import Network
from observations.archive.clusters import archive_lights, cluster_lights
from scheduling.night_plan import JobStep, TaskingError, TaskingJob

DEFAULT_RADIUS_DEG = 1.5
REQUIRED_COLUMNS = ("name", "ra", "dec", "filter", "exposure_s")


class GoalsError(ValueError):
    """A target list that cannot be read, with the line and what to fix."""


@dataclass(frozen=True)
class FilterGoal:
    """``goal_s`` seconds of integration through ``filter`` in frames of ``exposure_s`` seconds."""

    filter: str
    exposure_s: float
    goal_s: float


@dataclass
class GoalTarget:
    """A target of the list: ICRS position (degrees), the radius its panels lie within, goals."""

    name: str
    ra_deg: float
    dec_deg: float
    radius_deg: float = DEFAULT_RADIUS_DEG
    priority: float = 1.0
    goals: list[FilterGoal] = field(default_factory=list)


def _number(row: dict, key: str, line: int, default: float | None = None) -> float:
    text = (row.get(key) or "").strip()
    if not text:
        if default is None:
            raise GoalsError(f"line {line}: {key} is empty")
        return default
    try:
        value = float(text)
    except ValueError:
        raise GoalsError(f"line {line}: {key} = {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise GoalsError(f"line {line}: {key} = {text!r} must be a positive number")
    return value


def read_goals_csv(text: str) -> list[GoalTarget]:
    """Targets and goals from CSV: ``name, ra, dec, filter, exposure_s`` and ``goal_hours`` (or
    ``goal_s``); optional ``radius_deg`` and ``priority``. RA in degrees, or sexagesimal hours
    ("05:34:31.9"); Dec in degrees or sexagesimal degrees."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {c.strip().lower() for c in reader.fieldnames or []}
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing or not ({"goal_hours", "goal_s"} & columns):
        need = missing + ([] if {"goal_hours", "goal_s"} & columns else ["goal_hours or goal_s"])
        raise GoalsError(f"the target list lacks the column(s) {', '.join(need)} (it has {sorted(columns)})")
    targets: dict[str, GoalTarget] = {}
    for line, raw in enumerate(reader, start=2):
        row = {k.strip().lower(): (v or "") for k, v in raw.items() if k}
        name = row["name"].strip()
        if not name:
            raise GoalsError(f"line {line}: the target has no name")
        try:
            ra = parse_angle(row["ra"].strip(), hours=True)
            dec = parse_angle(row["dec"].strip())
        except ValueError as exc:
            raise GoalsError(f"line {line}: {exc}") from None
        if not (0.0 <= ra < 360.0 and -90.0 <= dec <= 90.0):
            raise GoalsError(f"line {line}: ({ra:g}, {dec:g}) is off the sky (ra in [0, 360), dec in [-90, 90])")
        exposure = _number(row, "exposure_s", line)
        if exposure <= 0:
            raise GoalsError(f"line {line}: exposure_s must be more than 0")
        goal = _number(row, "goal_s", line) if row.get("goal_s", "").strip() else \
            _number(row, "goal_hours", line) * 3600.0
        filter_name = row["filter"].strip()
        if not filter_name:
            raise GoalsError(f"line {line}: the filter is empty")
        target = targets.setdefault(name, GoalTarget(name, ra, dec, _number(row, "radius_deg", line,
                                                                             DEFAULT_RADIUS_DEG),
                                                     _number(row, "priority", line, 1.0)))
        target.goals.append(FilterGoal(filter_name, exposure, goal))
    if not targets:
        raise GoalsError("the target list has no rows")
    return list(targets.values())


GOALS_KEY = "archive_goals"


def import_goals(network: Network, targets: list[GoalTarget]) -> tuple[int, int]:
    """Store a target list as the network's targets (created or updated by name), each with
    its per-filter goals in ``metadata['archive_goals']``; returns (created, updated).

    The total (hours) and filters also go into the target's own goal fields, which the
    network scheduler plans from.
    """
    from targets.models import Target, TargetType, name_key

    created = updated = 0
    for goal in targets:
        target = Target.objects.filter(network=network, name_key=name_key(goal.name)).first()
        if target is None:
            target = Target(network=network, name=goal.name, target_type=TargetType.DEEP_SKY)
            created += 1
        else:
            updated += 1
        target.ra_deg, target.dec_deg, target.priority = goal.ra_deg, goal.dec_deg, goal.priority
        target.required_filters = [g.filter for g in goal.goals]
        target.exposure_sec = goal.goals[0].exposure_s
        target.total_hours = sum(g.goal_s for g in goal.goals) / 3600.0 or None
        target.metadata = {**(target.metadata or {}), GOALS_KEY: {
            "radius_deg": goal.radius_deg,
            "filters": [{"filter": g.filter, "exposure_s": g.exposure_s, "goal_s": g.goal_s} for g in goal.goals]}}
        target.save()
    return created, updated


def stored_goals(network: Network) -> list[GoalTarget]:
    """The network's targets that carry imported per-filter goals, as a target list."""
    from targets.models import Target

    out = []
    for target in Target.objects.filter(network=network, is_active=True, metadata__has_key=GOALS_KEY):
        stored = target.metadata[GOALS_KEY]
        out.append(GoalTarget(target.name, target.ra_deg, target.dec_deg, stored.get("radius_deg", DEFAULT_RADIUS_DEG),
                              target.priority, [FilterGoal(g["filter"], g["exposure_s"], g["goal_s"])
                                                for g in stored.get("filters", [])]))
    return out


@dataclass
class PanelCoverage:
    """One panel of a target and one filter: good integration against the goal (seconds)."""

    target: str
    panel: str
    ra_deg: float
    dec_deg: float
    rotation_deg: float | None
    filter: str
    exposure_s: float
    goal_s: float
    have_s: float
    frames: int
    priority: float = 1.0

    @property
    def missing_s(self) -> float:
        return max(0.0, self.goal_s - self.have_s)

    @property
    def short(self) -> bool:
        """Short of the goal by at least half a frame."""
        return self.missing_s >= 0.5 * self.exposure_s


def coverage(network: Network, targets: list[GoalTarget], site_id: int | None = None) -> list[PanelCoverage]:
    """Per target, panel and filter: integrated good exposure against the goal."""
    rows = []
    for target in targets:
        frames = archive_lights(network, near=(target.ra_deg, target.dec_deg, target.radius_deg), site_id=site_id)
        panels = sorted(cluster_lights(network, frames), key=lambda c: (-round(c.dec_deg, 3), c.ra_deg))
        if not panels:
            rows += [PanelCoverage(target.name, target.name, target.ra_deg, target.dec_deg, None, g.filter,
                                   g.exposure_s, g.goal_s, 0.0, 0, target.priority) for g in target.goals]
            continue
        for number, panel in enumerate(panels, start=1):
            name = f"{target.name} P{number}" if len(panels) > 1 else target.name
            for goal in target.goals:
                good = [f for f in panel.frames if f.accepted is not False and f.exposure_s and
                        band_key(f.filter or "") == band_key(goal.filter)]
                rows.append(PanelCoverage(target.name, name, panel.ra_deg, panel.dec_deg, panel.rotation_deg,
                                          goal.filter, goal.exposure_s, goal.goal_s,
                                          float(sum(f.exposure_s for f in good)), len(good), target.priority))
    return rows


def gap_jobs(rows: list[PanelCoverage], wheel: list[str], min_altitude_deg: float = 30.0,
             now: float | None = None) -> tuple[list[TaskingJob], list[tuple[str, str]]]:
    """Jobs for the panels and filters short of their goals; and what could not be tasked, why.

    ``wheel`` is the filter wheel's names (a goal's filter is matched to it by band).
    """
    now = time.time() if now is None else now
    by_panel: dict[str, list[PanelCoverage]] = {}
    for row in rows:
        if row.short:
            by_panel.setdefault(row.panel, []).append(row)
    jobs, skipped = [], []
    for panel, short in by_panel.items():
        steps = []
        for row in short:
            name = match_filter(row.filter, wheel)
            if name is None:
                skipped.append((panel, f"the wheel has no {row.filter!r} filter (it has {wheel})"))
                continue
            steps.append(JobStep(name, row.exposure_s, math.ceil(row.missing_s / row.exposure_s - 1e-9)))
        if not steps:
            continue
        first = short[0]
        duration = sum(s.exposure_sec * s.count for s in steps)
        jobs.append(TaskingJob(panel, first.ra_deg, first.dec_deg, tuple(steps), now, now + duration,
                               min_altitude_deg, group=first.target, priority=first.priority,
                               position_angle_deg=first.rotation_deg or 0.0))
    jobs.sort(key=lambda j: (-j.priority, j.group, j.name))
    return jobs, skipped


__all__ = ["GoalsError", "GoalTarget", "PanelCoverage", "TaskingError", "coverage", "gap_jobs", "import_goals",
           "read_goals_csv", "stored_goals"]
