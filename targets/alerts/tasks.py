"""Celery tasks of alert ingest (imported by targets.tasks so the worker registers them)."""
from celery import shared_task

from targets.alerts.polls import poll_source


@shared_task(name="targets.alerts.poll_source")
def poll_alert_source(name: str) -> dict[str, int]:
    """Poll one source (Gaia, TNS); idempotent: the cursor only moves with the alerts it covers."""
    return {slug: report.received - report.duplicates for slug, report in poll_source(name).items()}
