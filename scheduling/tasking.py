"""Tonight's tasking files for a site, from the database: goals, what is recorded, the plan.

Goals come from two places: targets of the site's network with a ``total_hours`` goal
(split evenly over their filters), and the site's current ranked list (one visit each, as
the scheduler planned it). What the network already recorded through each filter is
subtracted, the rest is fitted into the site's night (:func:`plan_night`), and the jobs are
written in the format asked for (:func:`scheduling.exports.tasking_files`).
"""
from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Sequence

from datas_pipeline.sky.filters import resolve_filters
from django.db.models import Q, Sum
from django.utils import timezone

from observations.models import Observation
from scheduling.exports import EkosOptions, tasking_files
from scheduling.night_plan import (
    ExposureGoal,
    RecordedExposure,
    TargetGoal,
    TaskingError,
    TaskingPlan,
    plan_night,
    remaining_goals,
)
from scheduling.passes import site_list, site_spec
from sites.models import Site
from targets.models import Target

MAX_GOAL_TARGETS = 300


def _reachable(site: Site) -> Q:
    """Targets whose meridian altitude reaches the site's floor (cheap, in SQL)."""
    span = 90.0 - site.min_altitude_deg
    return Q(dec_deg__gte=site.latitude - span, dec_deg__lte=site.latitude + span)


def site_goals(site: Site, now: dt.datetime) -> list[TargetGoal]:
    """The site's goals: hour goals of reachable network targets, then one visit per list entry."""
    goals: dict[int, TargetGoal] = {}
    hour_targets = (Target.objects.filter(network_id=site.network_id, is_active=True, total_hours__gt=0)
                    .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now)).filter(_reachable(site))
                    .order_by("-priority", "name")[:MAX_GOAL_TARGETS])
    for target in hour_targets:
        filters = resolve_filters(target.required_filters or [], site.filters or [])
        if target.required_filters and not filters:
            continue
        per_filter = target.total_hours * 3600.0 / len(filters)
        exposure = target.exposure_sec or 60.0
        goals[target.pk] = TargetGoal(target.name, target.ra_deg, target.dec_deg,
                                      tuple(ExposureGoal(f, exposure, per_filter) for f in filters),
                                      priority=target.priority)
    entries = [e for e in site_list(site).get("entries", []) if e["target_id"] not in goals]
    listed = Target.objects.in_bulk([e["target_id"] for e in entries])
    for entry in entries:
        target = listed.get(entry["target_id"])
        if target is None:
            continue
        goals[target.pk] = TargetGoal(target.name, target.ra_deg, target.dec_deg, tuple(
            ExposureGoal(s["filter"], s["exposure_sec"], s["exposure_sec"] * s["count"])
            for s in entry["filter_plan"]), priority=entry["score"], group="scheduler")
    return list(goals.values())


def recorded_exposure(site: Site, goals: Sequence[TargetGoal]) -> list[RecordedExposure]:
    """Exposure the network recorded for the goal targets, by target and filter (hour goals only:
    a visit from the ranked list is wanted afresh each night)."""
    names = [g.name for g in goals if g.group != "scheduler"]
    rows = (Observation.objects.filter(network_id=site.network_id, target__name__in=names)
            .values("target__name", "filter").annotate(seconds=Sum("exposure_sec")))
    return [RecordedExposure(r["target__name"], r["filter"], r["seconds"], 1) for r in rows]


def plan_for_site(site: Site, when: dt.datetime | None = None) -> TaskingPlan:
    """Tonight's plan for the site: its goals minus what is recorded, fitted into its night."""
    when = when or timezone.now()
    goals = site_goals(site, when)
    missing = remaining_goals(goals, recorded_exposure(site, goals))
    spec = site_spec(site)
    return plan_night(missing, spec.observatory, spec.filters, when)


def tasking_for_site(site: Site, fmt: str, when: dt.datetime | None = None, *,
                     ekos_options: EkosOptions | None = None, nina_template: dict | None = None
                     ) -> tuple[TaskingPlan, dict[str, str]]:
    """The plan and its files (name -> text) in ``fmt`` (``ekos``, ``nina`` or ``csv``)."""
    plan = plan_for_site(site, when)
    if not plan.jobs:
        reasons = "; ".join(f"{name}: {why}" for name, why in plan.unplanned[:5]) or "no goals for this site"
        raise TaskingError(f"nothing to observe at {site.name} tonight ({reasons})")
    return plan, tasking_files(fmt, plan.jobs, site.filters or [], ekos_options=ekos_options,
                               nina_template=nina_template)


def zip_files(files: dict[str, str]) -> bytes:
    """The files in one ZIP archive (deflated)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()
