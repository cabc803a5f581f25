"""Keep each target's coverage counters (observations, sites, last 7 days) up to date."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db.models import Count, Max, Q
from django.utils import timezone

from targets.models import Target, observation_model


def refresh_coverage(target_ids: Iterable[int] | None = None) -> int:
    """Recompute coverage for the given targets (all when None); return how many changed.

    Runs after every observation upload for the targets it touched, and nightly (the
    ``targets.refresh_all_coverage`` task) so ``observations_last_7d`` decays without uploads.
    """
    # Observations point at targets (observations imports targets, never the reverse): the model
    # is reached through that relation.
    Observation = observation_model()

    targets = Target.objects.all()
    if target_ids is not None:
        targets = targets.filter(pk__in=list(target_ids))
    week_ago = timezone.now() - timedelta(days=7)
    stats = {
        row["target_id"]: row
        for row in Observation.objects.filter(target__in=targets).values("target_id").annotate(
            total=Count("id"), sites=Count("site_id", distinct=True),
            recent=Count("id", filter=Q(observed_at__gte=week_ago)), last=Max("observed_at"))
    }
    changed = []
    for target in targets.only("id", "total_observations", "unique_sites", "observations_last_7d",
                               "last_observed_at"):
        row = stats.get(target.pk, {"total": 0, "sites": 0, "recent": 0, "last": None})
        new = (row["total"], row["sites"], row["recent"], row["last"])
        old = (target.total_observations, target.unique_sites, target.observations_last_7d,
               target.last_observed_at)
        if new != old:
            (target.total_observations, target.unique_sites, target.observations_last_7d,
             target.last_observed_at) = new
            changed.append(target)
    Target.objects.bulk_update(changed, ["total_observations", "unique_sites", "observations_last_7d",
                                         "last_observed_at"])
    return len(changed)


COVERAGE_TASK = "targets.refresh_all_coverage"
COVERAGE_ENTRY = "Refresh target coverage (nightly)"  # the name migration 0003 gave it


def ensure_coverage_schedule(sender, **kwargs) -> None:
    """``post_migrate``: the nightly coverage refresh is scheduled (migration 0003 made it; a
    database flushed by a test, or an entry deleted by hand, gets it back). A manager's edits
    to an existing entry are kept."""
    if sender.name != "targets":
        return
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if PeriodicTask.objects.filter(task=COVERAGE_TASK).exists():
        return
    crontab, _ = CrontabSchedule.objects.get_or_create(minute="17", hour="12", day_of_week="*", day_of_month="*",
                                                       month_of_year="*", timezone="UTC")
    PeriodicTask.objects.get_or_create(name=COVERAGE_ENTRY, defaults={"task": COVERAGE_TASK, "crontab": crontab})
