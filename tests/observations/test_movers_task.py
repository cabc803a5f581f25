"""The mover search as a server task: a night's stored frames of a target with a seeded mover,
the candidate stored with its report, re-runs replacing it, and the portal showing it to its
network only."""
from datetime import UTC, date, datetime, timedelta

import numpy as np
import pytest
from celery import current_app
from datas_pipeline.movers.synthetic import MOVER_DTYPE, make_mover_sequence
from django.core.management import CommandError, call_command
from django.test import Client

from observations.mover_models import MoverCandidate, MoverSearch
from observations.movers import MoverSearchError, find_movers_task, search_movers
from observations.storage import frame_key, frame_storage, save_bytes
from tests.network.factories import build_world
from tests.observations.frame_factories import fits_bytes, make_frame

pytestmark = pytest.mark.django_db
NIGHT = date(2026, 12, 5)  # the frames are taken from 01:00 UTC on the 6th
RATE = (1.6, -1.2)  # px/frame: 2.0 px/frame


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def night(frame_store):
    """Twelve 256x256 frames of network A's target with one mover of SNR 8, stored as Frame rows."""
    world = build_world()
    movers = np.zeros(1, MOVER_DTYPE)
    movers["x"], movers["y"], movers["vx"], movers["vy"], movers["snr"] = 80.0, 170.0, *RATE, 8.0
    sequence = make_mover_sequence(n_frames=12, shape=(256, 256), movers=movers, seed=3)
    wcs_header = dict(sequence.wcs.to_header())
    frames = []
    for k, (image, header) in enumerate(zip(sequence.frames, sequence.headers, strict=True)):
        data = fits_bytes(image, header)
        sha = f"{k:02d}" + "ab" * 31
        key = save_bytes(frame_key(world.a.pk, sha), data)
        observed = datetime(2026, 12, 6, 1, 0, 25, tzinfo=UTC) + timedelta(seconds=60 * k)
        frames.append(make_frame(world.a_site, target=world.a_target, sha256=sha, storage_key=key,
                                 size_bytes=len(data), width=256, height=256, observed_at=observed,
                                 exposure_s=50.0, original_name=f"seq_{k:02d}.fits", wcs_header=wcs_header))
    world.frames, world.truth = frames, sequence
    return world


def test_task_stores_the_mover_and_a_rerun_replaces_it(night):
    outcome = find_movers_task.apply(args=(night.a.pk, night.a_target.pk, NIGHT.isoformat())).get()
    assert outcome["movers"] >= 1, outcome
    search = MoverSearch.objects.get(network=night.a, target=night.a_target, night=NIGHT)
    assert search.frames.count() == 12
    movers = list(search.candidates.filter(kind="mover"))
    best = movers[0]  # highest SNR first
    assert best.rate_px_per_frame == pytest.approx(np.hypot(*RATE), rel=0.10)
    truth_angle = np.degrees(np.arctan2(RATE[1], RATE[0])) % 360
    assert abs((best.angle_deg - truth_angle + 180) % 360 - 180) < 5
    assert len(best.positions) >= 10 and best.frames.count() == len(best.positions)
    first = best.positions[0]
    x0, y0 = night.truth.mover_position(0, first["frame"])
    assert np.hypot(first["x"] - x0, first["y"] - y0) < 1.0
    assert best.first_at < best.last_at
    assert frame_storage().exists(search.report_key) and frame_storage().exists(search.json_key)
    assert b"Moving objects" in frame_storage().open(search.report_key).read()
    # Re-running the night (here through the command, with the frames by id) replaces, not adds.
    count = MoverCandidate.objects.count()
    call_command("find_movers", "--network", "net-a", "--target", "Delta Cephei",
                 "--frames", *[str(f.pk) for f in night.frames])
    assert MoverSearch.objects.count() == 1 and MoverCandidate.objects.count() == count

    # The target and frame pages show it to network A; network B sees neither page nor report.
    page = client_for(night.a_viewer).get(f"/targets/{night.a_target.pk}/").content.decode()
    assert best.number in page and f"{best.rate_px_per_frame:.2f}" in page
    assert f"/movers/{search.pk}/report" in page
    frame_page = client_for(night.a_viewer).get(f"/frames/{night.frames[0].pk}/").content.decode()
    assert best.number in frame_page
    report = client_for(night.a_viewer).get(f"/movers/{search.pk}/report")
    assert report.status_code == 200 and b"Moving objects" in b"".join(report.streaming_content)
    outsider = client_for(night.b_owner)
    assert outsider.get(f"/targets/{night.a_target.pk}/").status_code == 404
    assert outsider.get(f"/frames/{night.frames[0].pk}/").status_code == 404
    assert outsider.get(f"/movers/{search.pk}/report").status_code == 404
    assert best.number not in outsider.get(f"/targets/{night.b_target.pk}/").content.decode()


def test_managers_run_the_search_from_the_target_page(night, monkeypatch):
    # As in the embedded default (no broker): the task runs in the request.
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    url = f"/targets/{night.a_target.pk}/movers"
    assert client_for(night.a_viewer).post(url, {"night": NIGHT.isoformat()}).status_code == 403
    assert client_for(night.b_manager).post(url, {"night": NIGHT.isoformat()}).status_code == 404
    manager = client_for(night.a_manager)
    bad = manager.post(url, {"night": "yesterday"})
    assert bad.status_code == 400
    response = manager.post(url, {"night": NIGHT.isoformat()})
    assert response.status_code == 302  # tasks run eagerly in the embedded default
    assert MoverCandidate.objects.filter(network=night.a, kind="mover").exists()
    page = manager.get(response.url).content.decode()
    assert "1 mover(s)" in page and "Search the night for movers" in page
    assert "Search the night for movers" not in client_for(night.a_viewer).get(response.url).content.decode()


def test_too_few_frames_or_foreign_frames_are_refused(night):
    with pytest.raises(MoverSearchError, match="at least 5"):
        search_movers(night.a.pk, night.a_target.pk, date(2026, 12, 1))
    with pytest.raises(MoverSearchError, match="no frames"):
        search_movers(night.b.pk, night.b_target.pk, frame_ids=[f.pk for f in night.frames])
    with pytest.raises(CommandError, match="no target"):
        call_command("find_movers", "--network", "net-a", "--target", "Nowhere", "--night", "2026-12-05")
    with pytest.raises(CommandError, match="not a date"):
        call_command("find_movers", "--network", "net-a", "--target", "Delta Cephei", "--night", "5/12/2026")
    with pytest.raises(CommandError, match="no network"):
        call_command("find_movers", "--network", "nowhere", "--target", "Delta Cephei", "--night", "2026-12-05")
    assert not MoverSearch.objects.exists()


def test_a_missing_file_or_a_refused_sequence_is_a_clear_error(night):
    frame_storage().delete(night.frames[3].storage_key)
    with pytest.raises(MoverSearchError, match="missing from the frame storage"):
        search_movers(night.a.pk, night.a_target.pk, NIGHT)
    outcome = find_movers_task.apply(args=(night.a.pk, night.a_target.pk, NIGHT.isoformat())).get()
    assert "missing" in outcome["error"] and not MoverCandidate.objects.exists()
    # Frames of different sizes: the search refuses them, and the night's row says why.
    other = fits_bytes(np.full((64, 80), 200.0))
    night.frames[3].storage_key = save_bytes(night.frames[3].storage_key, other)
    night.frames[3].save()
    with pytest.raises(MoverSearchError, match="differ in size"):
        search_movers(night.a.pk, night.a_target.pk, NIGHT)
    search = MoverSearch.objects.get(target=night.a_target, night=NIGHT)
    assert "differ in size" in search.error
    page = client_for(night.a_viewer).get(f"/targets/{night.a_target.pk}/").content.decode()
    assert "differ in size" in page
