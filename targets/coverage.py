"""Keep each target's coverage counters (observations, sites, last 7 days) up to date."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from django.db import connection
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
    for target_id, total, sites, recent, last in targets.values_list(
            "id", "total_observations", "unique_sites", "observations_last_7d", "last_observed_at"):
        row = stats.get(target_id, {"total": 0, "sites": 0, "recent": 0, "last": None})
        new = (row["total"], row["sites"], row["recent"], row["last"])
        if new != (total, sites, recent, last):
            changed.append((target_id, *new))
    _write_coverage(changed)
    return len(changed)


def _write_coverage(rows: list[tuple]) -> None:
    """Set (id, total, sites, recent, last) on many targets in one UPDATE per 500 rows.

    Django's ``bulk_update`` builds a CASE per field and row in Python, which cost more than
    the upload it followed; this joins a derived table instead (PostgreSQL and SQLite >= 3.33).
    """
    if not rows:
        return
    table = Target._meta.db_table
    when = "timestamp with time zone" if connection.vendor == "postgresql" else "text"
    adapt = connection.ops.adapt_datetimefield_value
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 500):
            chunk = rows[start:start + 500]
            values = " UNION ALL ".join(
                [f"SELECT %s AS id, %s AS total, %s AS sites, %s AS recent, CAST(%s AS {when}) AS last"] * len(chunk))
            params = [v for pk, total, sites, recent, last in chunk for v in (pk, total, sites, recent, adapt(last))]
            cursor.execute(
                f"UPDATE {table} SET total_observations = v.total, unique_sites = v.sites, "  # noqa: S608 - names only
                f"observations_last_7d = v.recent, last_observed_at = v.last FROM ({values}) AS v "
                f"WHERE {table}.id = v.id", params)


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
