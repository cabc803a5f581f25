"""Celery tasks of the frame pipeline: one task per stage, chained per frame.

The stages themselves live in observations.stages; the science they call is datas_pipeline,
which imports no Django. Every task takes a frame id, is idempotent (observations.states),
acknowledges its message only when done (``acks_late``: a worker that dies mid-task leaves
it to be delivered to another), retries transient failures with exponential backoff and
jitter, and records permanent ones on the frame, which ends the chain.
"""
from __future__ import annotations

import logging
import random

from celery import chain, shared_task

log = logging.getLogger(__name__)
MAX_RETRIES = 6
BACKOFF_BASE_S = 5.0
BACKOFF_MAX_S = 600.0
TASK_OPTIONS = {"bind": True, "acks_late": True, "reject_on_worker_lost": True, "max_retries": MAX_RETRIES,
                "ignore_result": True}


def backoff_seconds(retries: int) -> float:
    """Exponential backoff with full jitter: up to 5, 10, 20, ... s, at most 10 minutes."""
    return random.uniform(0.5, 1.0) * min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2**retries)


def _run(task, frame_id: int, stage: str) -> str:
    from observations.stages import is_transient, record_gave_up, run_stage

    try:
        outcome = run_stage(frame_id, stage)
    except Exception as exc:
        if not is_transient(exc):
            raise
        if task.request.retries >= task.max_retries:
            record_gave_up(frame_id, stage, task.request.retries + 1, exc)
            task.request.chain = None
            return "failed"
        log.warning("pipeline: stage %s of frame %s hit a transient error (%s); retrying", stage, frame_id, exc)
        raise task.retry(exc=exc, countdown=backoff_seconds(task.request.retries)) from exc
    if outcome in ("failed", "missing"):
        task.request.chain = None  # the later stages have nothing to work on
    return outcome


@shared_task(name="pipeline.frame.header", **TASK_OPTIONS)
def read_header(self, frame_id: int) -> str:
    return _run(self, frame_id, "header")


@shared_task(name="pipeline.frame.solve", **TASK_OPTIONS)
def solve(self, frame_id: int) -> str:
    return _run(self, frame_id, "solve")


@shared_task(name="pipeline.frame.grade", **TASK_OPTIONS)
def grade(self, frame_id: int) -> str:
    return _run(self, frame_id, "grade")


@shared_task(name="pipeline.frame.calibration", **TASK_OPTIONS)
def match_calibration(self, frame_id: int) -> str:
    return _run(self, frame_id, "calibration")


@shared_task(name="pipeline.frame.photometry", **TASK_OPTIONS)
def photometry(self, frame_id: int) -> str:
    return _run(self, frame_id, "photometry")


@shared_task(name="pipeline.frame.observation", **TASK_OPTIONS)
def record_observation(self, frame_id: int) -> str:
    return _run(self, frame_id, "observation")


@shared_task(name="pipeline.frame.products", **TASK_OPTIONS)
def make_products(self, frame_id: int) -> str:
    return _run(self, frame_id, "products")


# In stage order (observations.states.STAGES).
STAGE_TASKS = {"header": read_header, "solve": solve, "grade": grade, "calibration": match_calibration,
               "photometry": photometry, "observation": record_observation, "products": make_products}


def frame_chain(frame_id: int, queue: str | None = None):
    """The whole per-frame chain; stages a frame has passed are no-ops, so it also resumes.

    ``queue`` overrides the routing (``DATAS_PIPELINE_QUEUE``) for every task of the chain.
    """
    from observations.states import STAGES

    options = {"queue": queue} if queue else {}
    return chain(*(STAGE_TASKS[stage.name].si(frame_id).set(**options) for stage in STAGES))


@shared_task(name="pipeline.resume_stalled", ignore_result=True)
def resume_stalled(older_than_minutes: float = 30.0) -> int:
    """Re-send the chain of frames stuck mid-pipeline (e.g. the broker lost its messages)."""
    from observations.processing import resume_stalled_frames

    return resume_stalled_frames(older_than_minutes)


# The archive's daily re-scan of configured shares, registered with the worker beside the stages.
from observations import movers as mover_tasks  # noqa: E402,F401  (the mover search of a night)
from observations.archive import tasks as archive_tasks  # noqa: E402,F401
