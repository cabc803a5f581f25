"""Pipeline states of a frame and every transition between them, in this one module.

A frame moves through the stages in a fixed order; a stage that does not apply to a frame (a
dark is not plate solved, a frame without a target gets no photometry) still advances the
state, with a note saying why it was skipped, so every frame ends ``done`` or ``failed``::

    received -> header_read -> solved -> graded -> calibration_matched -> measured
             -> recorded -> done
    (any state before done) -> failed   (permanent, with the reason)
    failed / done -> received           (re-run, by a manager or manage.py frame_pipeline)

Transitions are compare-and-set under a row lock: a stage's results are written only when
the frame is still in the state the stage started from. A task that runs twice (a retry, a
redelivered message after a worker died, a duplicate in the chain) finds the state already
advanced and changes nothing, which is what makes the Celery tasks idempotent.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db import models, transaction
from django.utils import timezone


class FrameState(models.TextChoices):
    RECEIVED = "received", "Received (waiting for the pipeline)"
    HEADER_READ = "header_read", "Header read"
    SOLVED = "solved", "Astrometry done"
    GRADED = "graded", "Graded"
    CALIBRATION_MATCHED = "calibration_matched", "Calibration masters matched"
    MEASURED = "measured", "Photometry done"
    RECORDED = "recorded", "Observation recorded"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


@dataclass(frozen=True)
class Stage:
    """One step of the per-frame chain: it runs on a frame in ``before`` and leaves it in ``after``."""

    name: str
    before: str
    after: str


STAGES: tuple[Stage, ...] = (
    Stage("header", FrameState.RECEIVED, FrameState.HEADER_READ),
    Stage("solve", FrameState.HEADER_READ, FrameState.SOLVED),
    Stage("grade", FrameState.SOLVED, FrameState.GRADED),
    Stage("calibration", FrameState.GRADED, FrameState.CALIBRATION_MATCHED),
    Stage("photometry", FrameState.CALIBRATION_MATCHED, FrameState.MEASURED),
    Stage("observation", FrameState.MEASURED, FrameState.RECORDED),
    Stage("products", FrameState.RECORDED, FrameState.DONE),
)
STAGE_BY_NAME = {stage.name: stage for stage in STAGES}
ORDER = [stage.before for stage in STAGES] + [FrameState.DONE]
TERMINAL = frozenset({FrameState.DONE, FrameState.FAILED})


class StageOutOfOrder(Exception):
    """A stage was asked to run on a frame that has not reached it yet."""


def stage(name: str) -> Stage:
    try:
        return STAGE_BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown pipeline stage {name!r}; stages are {', '.join(STAGE_BY_NAME)}") from None


def progress(state: str) -> float:
    """Share of the chain a frame in ``state`` has completed (0..1; failed frames count 0)."""
    if state == FrameState.FAILED or state not in ORDER:
        return 0.0
    return ORDER.index(state) / (len(ORDER) - 1)


def needs(frame, name: str) -> bool:
    """Whether ``frame`` (as loaded) is waiting for stage ``name``.

    False when the stage already ran or the frame failed (a repeat: do nothing). Raises
    `StageOutOfOrder` when an earlier stage has not run yet.
    """
    step = stage(name)
    if frame.state == step.before:
        return True
    if frame.state == FrameState.FAILED or ORDER.index(frame.state) > ORDER.index(step.before):
        return False
    raise StageOutOfOrder(f"frame {frame.pk} is {frame.state!r}; stage {name!r} needs {step.before!r}")


def mark_started(frame_model, frame_id: int, name: str) -> None:
    """Note which stage is running (shown in the admin and the API); counts attempts."""
    step = stage(name)
    frame_model.objects.filter(pk=frame_id, state=step.before).update(
        active_stage=name, active_since=timezone.now(), attempts=models.F("attempts") + 1)


def complete_stage(frame_model, frame_id: int, name: str, updates: dict, *, seconds: float,
                   note: str = "") -> bool:
    """Store a stage's results and advance the state, if no one else did it first.

    Returns True when this call advanced the frame, False when the stage had already run
    (or the frame failed meanwhile), in which case ``updates`` are discarded.
    """
    step = stage(name)
    with transaction.atomic():
        # Only the columns compared or merged here are read; the save writes only what changed.
        frame = (frame_model.objects.select_for_update().only("id", "state", "timings", "notes")
                 .filter(pk=frame_id).first())
        if frame is None or frame.state != step.before:
            return False
        for field, value in updates.items():
            setattr(frame, field, value)
        frame.state = step.after
        frame.state_reason = ""
        frame.state_changed_at = timezone.now()
        frame.active_stage = ""
        frame.active_since = None
        frame.timings = {**frame.timings, name: round(seconds, 4)}
        if note:
            frame.notes = {**frame.notes, name: note}
        frame.save(update_fields=[*updates, "state", "state_reason", "state_changed_at", "active_stage",
                                  "active_since", "timings", "notes"])
    return True


def fail(frame_model, frame_id: int, name: str, reason: str) -> bool:
    """Record a permanent failure of stage ``name`` with its reason; False if already terminal."""
    with transaction.atomic():
        frame = frame_model.objects.select_for_update().filter(pk=frame_id).first()
        if frame is None or frame.state in TERMINAL:
            return False
        frame.state = FrameState.FAILED
        frame.state_reason = f"{name}: {reason}"[:2000]
        frame.state_changed_at = timezone.now()
        frame.active_stage = ""
        frame.active_since = None
        frame.save(update_fields=["state", "state_reason", "state_changed_at", "active_stage", "active_since"])
    return True


def restart(frame_model, frame_ids) -> int:
    """Send finished or failed frames back to ``received`` so the chain runs again.

    Products are keyed on the frame, so a re-run replaces them rather than adding more.
    Returns how many frames were reset.
    """
    return frame_model.objects.filter(pk__in=list(frame_ids), state__in=list(TERMINAL)).update(
        state=FrameState.RECEIVED, state_reason="", state_changed_at=timezone.now(), active_stage="",
        active_since=None, timings={}, notes={})
