"""Starting, re-running and resuming the per-frame pipeline (the Celery chain in observations.tasks)."""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.utils import timezone

from observations.frames import Frame
from observations.states import TERMINAL, restart

log = logging.getLogger(__name__)


def start_frame_pipeline(frame_id: int) -> bool:
    """Queue the chain for a frame; False (and logged) when the broker cannot be reached.

    A frame left waiting is picked up by `resume_stalled_frames` (the periodic
    ``pipeline.resume_stalled`` task, or ``manage.py frame_pipeline --resume``).
    """
    from observations.tasks import frame_chain

    try:
        frame_chain(frame_id).apply_async()
    except Exception as exc:  # kombu/redis connection errors of many types
        from celery import current_app

        if current_app.conf.task_always_eager:
            raise
        log.error("pipeline: could not queue frame %s (%s); it will be resumed later", frame_id, exc)
        return False
    return True


def rerun_frames(frame_ids: Iterable[int]) -> int:
    """Send done or failed frames through the whole chain again; return how many."""
    ids = list(frame_ids)
    count = restart(Frame, ids)
    for frame_id in Frame.objects.filter(pk__in=ids, state="received").values_list("pk", flat=True):
        start_frame_pipeline(frame_id)
    return count


def resume_stalled_frames(older_than_minutes: float = 30.0) -> int:
    """Re-queue frames that have not moved for a while and are neither done nor failed."""
    quiet_since = timezone.now() - timedelta(minutes=older_than_minutes)
    stalled = list(Frame.objects.exclude(state__in=list(TERMINAL)).filter(state_changed_at__lt=quiet_since)
                   .filter(active_since__isnull=True).values_list("pk", flat=True)[:10000])
    stalled += list(Frame.objects.exclude(state__in=list(TERMINAL)).filter(active_since__lt=quiet_since)
                    .values_list("pk", flat=True)[:10000])
    for frame_id in dict.fromkeys(stalled):
        start_frame_pipeline(frame_id)
    return len(set(stalled))
