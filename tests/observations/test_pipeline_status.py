"""Pipeline status per target: counts and the latest failures, in a fixed number of queries."""
from datetime import UTC, datetime, timedelta

import pytest

from observations.frame_selectors import RECENT_FAILURES, frames_of_networks, pipeline_status
from observations.frames import Frame
from observations.states import FrameState
from tests.network.api_helpers import person_client
from tests.network.factories import build_world, make_target
from tests.observations.frame_factories import make_frame

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 1, tzinfo=UTC)


def failed(site, target, minute: int) -> Frame:
    frame = make_frame(site, target=target, state=FrameState.FAILED, state_reason=f"solve: failure {minute}")
    Frame.objects.filter(pk=frame.pk).update(state_changed_at=T0 + timedelta(minutes=minute))
    return frame


def test_latest_failures_of_every_target_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    world = build_world()
    targets = [make_target(world.a, name=f"T{i:02d}", ra_deg=10 + i, dec_deg=10) for i in range(12)]
    expected = {}
    for i, target in enumerate(targets):
        frames = [failed(world.a_site, target, 100 * i + m) for m in range(i % 8)]
        make_frame(world.a_site, target=target)
        expected[target.pk] = [f.pk for f in reversed(frames)][:RECENT_FAILURES]
    loose = [failed(world.a_site, None, m) for m in range(2)]
    expected[None] = [f.pk for f in reversed(loose)]
    failed(world.b_site, world.b_target, 1)  # another network's failure is never listed
    with django_assert_max_num_queries(3):
        status = pipeline_status(frames_of_networks([world.a]))
    got = {row["target_id"]: [f["id"] for f in row["recent_failures"]] for row in status}
    assert got == expected
    row = next(r for r in status if r["target_id"] == targets[3].pk)
    assert row["failed"] == 3 and row["done"] == 1
    assert row["recent_failures"][0] == {"id": expected[targets[3].pk][0], "original_name": row["recent_failures"][0][
        "original_name"], "state_reason": "solve: failure 302", "state_changed_at": T0 + timedelta(minutes=302)}
    api = person_client(world.a_viewer).get("/api/v1/frames/status").json()
    assert {r["target_id"]: [f["id"] for f in r["recent_failures"]] for r in api} == expected
