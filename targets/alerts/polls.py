"""Polled sources (Gaia alerts CSV, TNS daily CSV): incremental, on a Celery beat schedule.

The cursor moves in the same transaction as the alerts it covers, so a failed poll repeats
exactly the work it did not finish. Nothing is polled unless DATAS_ALERT_POLL_SOURCES names it.
"""
from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from targets.alerts.http import AlertHttpClient, FeedHttpError
from targets.alerts.ingest import IngestReport, ingest_everywhere
from targets.alerts.models import AlertFeed
from targets.alerts.registry import UnknownSource, source_named
from targets.alerts.sources.base import BadPacket, PolledSource

log = logging.getLogger(__name__)


class PollError(RuntimeError):
    """A poll that failed; the feed row keeps the reason."""


def poll_source(name: str, client: AlertHttpClient | None = None) -> dict[str, IngestReport]:
    """Fetch what is new from one polled source and ingest it into every network that takes it."""
    try:
        source = source_named(name)
    except UnknownSource as exc:
        raise PollError(str(exc)) from exc
    if not isinstance(source, PolledSource):
        raise PollError(f"alert source {name!r} is not polled")
    feed, _ = AlertFeed.objects.get_or_create(name=f"poll-{name}", defaults={"kind": "poll", "source": name})
    try:
        alerts, cursor = source.poll(client or AlertHttpClient(), feed.cursor)
    except (FeedHttpError, BadPacket) as exc:
        AlertFeed.objects.filter(pk=feed.pk).update(status="error", last_error=str(exc)[:2000])
        raise PollError(f"polling {name}: {exc}") from exc
    with transaction.atomic():
        reports = ingest_everywhere(alerts)
        updates = {"status": "ok", "cursor": cursor, "last_error": "", "messages": F("messages") + 1,
                   "alerts": F("alerts") + len(alerts)}
        if alerts:
            updates["last_message_at"] = timezone.now()
        AlertFeed.objects.filter(pk=feed.pk).update(**updates)
    log.info("polled %s: %d new alert(s), cursor %r", name, len(alerts), cursor)
    return reports


def beat_entry_name(name: str) -> str:
    return f"Alert poll: {name}"


def ensure_poll_entries() -> None:
    """A django-celery-beat entry for each source in DATAS_ALERT_POLL_SOURCES (an edited interval is kept)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask
    if not settings.DATAS_ALERT_POLL_SOURCES:
        return
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.DATAS_ALERT_POLL_MINUTES,
                                                      period=IntervalSchedule.MINUTES)
    for name in settings.DATAS_ALERT_POLL_SOURCES:
        PeriodicTask.objects.get_or_create(name=beat_entry_name(name), defaults={
            "task": "targets.alerts.poll_source", "interval": every, "args": f'["{name}"]',
            "description": f"Polls the {name} alert source incrementally and ingests what is new."})


def poll_entries_after_migrate(sender, **kwargs) -> None:
    if sender.name == "targets":
        ensure_poll_entries()
