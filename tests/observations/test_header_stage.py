"""The header stage works from the header stored at upload: no second check of the pixels."""
import pytest

from observations.frame_header import header_cards
from observations.frames import Frame
from observations.stages import run_stage
from observations.states import FrameState
from tests.network.factories import build_world, make_target
from tests.observations.frame_factories import light_header, make_frame

pytestmark = pytest.mark.django_db


def stored(frame_store, frame: Frame, content: bytes) -> None:
    path = frame_store / frame.storage_key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def test_header_stage_finds_the_target_from_the_stored_cards(frame_store):
    world = build_world()
    target = make_target(world.a, name="V1 Tau", ra_deg=56.97, dec_deg=24.32)
    frame = make_frame(world.a_site, state=FrameState.RECEIVED, width=640, height=480,
                       fits_header=header_cards(light_header(OBJECT="V1 Tau")))
    # The bytes were checked at upload; the stage must not decode them again (these would fail).
    stored(frame_store, frame, b"not a FITS file at all")
    assert run_stage(frame.pk, "header") == "done"
    frame = Frame.objects.get(pk=frame.pk)
    assert frame.state == FrameState.HEADER_READ and frame.target_id == target.pk
    assert (frame.width, frame.height, frame.exposure_s) == (640, 480, 30.0)  # the upload's columns stay


def test_header_stage_reports_a_missing_file(frame_store):
    frame = make_frame(build_world().a_site, state=FrameState.RECEIVED,
                       fits_header=header_cards(light_header(OBJECT="V1 Tau")))
    assert run_stage(frame.pk, "header") == "failed"
    assert "missing from the frame storage" in Frame.objects.get(pk=frame.pk).state_reason
