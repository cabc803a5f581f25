"""Periodic target upkeep (scheduled by django-celery-beat, see docs/spine.md)."""
from celery import shared_task

from targets.alerts.tasks import poll_alert_source  # noqa: F401  registers the alert polls
from targets.coverage import refresh_coverage


@shared_task(name="targets.refresh_all_coverage")
def refresh_all_coverage() -> int:
    """Recompute every target's coverage counters; idempotent, safe to run any time."""
    return refresh_coverage()
