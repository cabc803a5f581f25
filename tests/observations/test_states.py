"""observations.states: compare-and-set transitions, the one place pipeline states change."""
import pytest

from observations.frames import Frame
from observations.states import (
    ORDER,
    STAGES,
    FrameState,
    StageOutOfOrder,
    complete_stage,
    fail,
    mark_started,
    needs,
    progress,
    restart,
)
from tests.network.factories import build_world
from tests.observations.frame_factories import make_frame

pytestmark = pytest.mark.django_db


@pytest.fixture
def frame():
    return make_frame(build_world().a_site, state=FrameState.RECEIVED)


def test_stages_chain_every_state_in_order():
    assert [s.before for s in STAGES][1:] == [s.after for s in STAGES][:-1]
    assert ORDER[0] == FrameState.RECEIVED and ORDER[-1] == FrameState.DONE
    assert progress(FrameState.RECEIVED) == 0 and progress(FrameState.DONE) == 1 and progress(FrameState.FAILED) == 0


def test_a_stage_completes_once(frame):
    assert needs(frame, "header")
    mark_started(Frame, frame.pk, "header")
    assert complete_stage(Frame, frame.pk, "header", {"filter": "R"}, seconds=0.5, note="ok")
    assert not complete_stage(Frame, frame.pk, "header", {"filter": "B"}, seconds=9.0)
    frame.refresh_from_db()
    assert (frame.state, frame.filter, frame.timings, frame.notes, frame.attempts) == (
        "header_read", "R", {"header": 0.5}, {"header": "ok"}, 1)
    assert frame.active_stage == "" and frame.active_since is None
    assert not needs(frame, "header") and needs(frame, "solve")
    with pytest.raises(StageOutOfOrder):
        needs(frame, "grade")
    with pytest.raises(ValueError, match="unknown pipeline stage"):
        needs(frame, "stack")


def test_failures_are_terminal_until_a_rerun(frame):
    assert fail(Frame, frame.pk, "solve", "no stars")
    frame.refresh_from_db()
    assert (frame.state, frame.state_reason) == ("failed", "solve: no stars")
    assert not needs(frame, "header") and not fail(Frame, frame.pk, "grade", "again")
    assert not complete_stage(Frame, frame.pk, "header", {}, seconds=0)
    assert restart(Frame, [frame.pk]) == 1
    frame.refresh_from_db()
    assert (frame.state, frame.state_reason, frame.timings) == ("received", "", {})
    assert restart(Frame, [frame.pk]) == 0  # only done or failed frames restart


def test_stalled_frames_are_resumed_and_the_sweep_is_scheduled(monkeypatch):
    from datetime import timedelta

    from django.utils import timezone
    from django_celery_beat.models import PeriodicTask

    import observations.processing as processing

    site = build_world().a_site
    long_ago = timezone.now() - timedelta(hours=2)
    waiting = make_frame(site, state=FrameState.GRADED, state_changed_at=long_ago)
    stuck = make_frame(site, state=FrameState.SOLVED, state_changed_at=long_ago, active_stage="grade",
                       active_since=long_ago)
    make_frame(site, state=FrameState.GRADED)  # moved recently: left alone
    make_frame(site, state=FrameState.DONE, state_changed_at=long_ago)
    make_frame(site, state=FrameState.FAILED, state_changed_at=long_ago)
    queued = []
    monkeypatch.setattr(processing, "start_frame_pipeline", queued.append)
    assert processing.resume_stalled_frames(30) == 2
    assert sorted(queued) == sorted([waiting.pk, stuck.pk])
    task = PeriodicTask.objects.get(task="pipeline.resume_stalled")
    assert task.enabled and task.interval.every == 15
