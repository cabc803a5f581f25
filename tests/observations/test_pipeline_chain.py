"""The per-frame chain on synthetic Tycho-2 skies: WCS, grades and photometry against the truth,
and idempotency (the same task twice, a re-upload) leaving exactly one set of products."""
import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from observations.exports.aavso import extended_format
from observations.frame_astrometry import frame_wcs
from observations.frames import Frame
from observations.models import Observation
from observations.stages import run_stage
from observations.states import STAGES
from observations.tasks import frame_chain
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_target
from tests.observations.conftest import stored_files
from tests.observations.sky_frames import SCALE_ARCSEC, TARGET, TARGET_MAG, pixel_error, sky_frame
from tests.observations.test_aavso import read_extended

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def world():
    world = build_world()
    world.v1 = make_target(world.a, name="V1 Tau", ra_deg=TARGET[0], dec_deg=TARGET[1], magnitude=TARGET_MAG)
    return world


def upload_and_run(world, frame_bytes: bytes, name: str) -> Frame:
    response = agent_client(world.a_key).post(
        "/api/v1/frames", {"file": SimpleUploadedFile(name, frame_bytes)}, format="multipart")
    assert response.status_code in (200, 201), response.content
    frame_chain(response.json()["id"]).apply()
    return Frame.objects.get(pk=response.json()["id"])


def test_chain_solves_grades_and_measures_against_the_truth(world, frame_store):
    sequence = [sky_frame(0), sky_frame(1, shift_px=(7.3, -4.1)), sky_frame(2, shift_px=(-5.0, 9.6)),
                sky_frame(3, shift_px=(2.0, 2.0), transparency=0.35)]
    frames = [upload_and_run(world, f.data, f"v1tau_{i}.fits") for i, f in enumerate(sequence)]
    for frame, truth in zip(frames, sequence, strict=True):
        assert frame.state == "done", (frame.state_reason, frame.notes)
        assert pixel_error(frame_wcs(frame), truth.wcs) < 0.3
        assert frame.pixel_scale_arcsec == pytest.approx(SCALE_ARCSEC, rel=2e-3)
        assert frame.rotation_deg == pytest.approx(20.0, abs=0.1) and frame.flipped is False
        x, y = truth.wcs.all_pix2world([-0.5, 511.5], [-0.5, 511.5], 0)
        assert frame.footprint[0] == pytest.approx([x[0], y[0]], abs=3e-4)
        assert frame.footprint[2] == pytest.approx([x[1], y[1]], abs=3e-4)
        assert frame.target == world.v1 and frame.preview_key and frame.thumbnail_key
    # The first frame of the pointing is plate solved; the others propagate from it.
    assert [f.wcs_source for f in frames] == ["solved", "propagated", "propagated", "propagated"]
    assert all(f.wcs_reference_id == frames[0].pk for f in frames[1:])
    # Grades: three clear frames accepted at the rendered FWHM, the clouded one rejected for clouds.
    assert [f.accepted for f in frames] == [True, True, True, False]
    assert "clouds" in frames[3].quality_flags and frames[3].quality["reasons"][0].startswith("clouds")
    assert frames[3].quality["star_flux"] < 0.6 * frames[0].quality["star_flux"]
    for frame in frames[:3]:
        assert frame.quality["fwhm_px"] == pytest.approx(2.5, abs=0.3)
        assert frame.fwhm_arcsec == pytest.approx(2.5 * SCALE_ARCSEC, rel=0.15)
    # Photometry: the injected magnitude within three sigma, with a sensible error and comparisons.
    for frame in frames[:3]:
        measured = frame.photometry
        error = measured["magnitude_error"]
        assert 0.003 < error < 0.05
        assert abs(measured["magnitude"] - TARGET_MAG) < 3 * error + 0.01, measured
        assert len(measured["comparison_stars"]) >= 5 and measured["check_star"] is not None
        assert abs(measured["check_star"]["residual"]) < 3 * measured["check_star"]["error"] + 0.02
        assert measured["airmass"] >= 1.0 and measured["recentred"] is True
    # One observation per frame, coverage updated for the scheduler, a light curve with airmass.
    observations = Observation.objects.filter(target=world.v1).order_by("observed_at")
    assert [o.pk for o in observations] == [f.observation_id for f in frames]
    first = observations[0]
    assert first.magnitude == pytest.approx(frames[0].photometry["magnitude"])
    assert first.position_source == "astrometry" and first.seeing_arcsec == pytest.approx(frames[0].fwhm_arcsec)
    assert abs(first.ra_deg - TARGET[0]) * np.cos(np.radians(TARGET[1])) * 3600 < SCALE_ARCSEC / 5
    world.v1.refresh_from_db()
    assert (world.v1.total_observations, world.v1.unique_sites) == (4, 1)
    curve = person_client(world.a_viewer).get(f"/api/v1/lightcurve/{world.v1.pk}").json()["filters"]["V"]
    assert len(curve) == 4 and all(p["airmass"] >= 1 and p["site_id"] == world.a_site.pk for p in curve)
    # The pipeline's observations are reportable to the AAVSO as they are.
    _, rows = read_extended(extended_format(observations.select_related("target", "site"), obscode="XYZ",
                                            software="DATAS").text)
    assert len(rows) == 4 and all(r["CNAME"] == "ENSEMBLE" and r["CHART"] == "Tycho-2" for r in rows)
    assert float(rows[0]["MAGNITUDE"]) == pytest.approx(frames[0].photometry["magnitude"], abs=6e-4)
    # Pipeline status, per frame and per target.
    status = person_client(world.a_viewer).get("/api/v1/frames/status", {"target_id": world.v1.pk}).json()
    assert status[0]["frames"] == 4 and status[0]["done"] == 4 and status[0]["progress"] == 1.0
    detail = person_client(world.a_viewer).get(f"/api/v1/frames/{frames[1].pk}").json()
    assert detail["pipeline"]["state"] == "done" and set(detail["pipeline"]["seconds"]) == {s.name for s in STAGES}
    assert detail["wcs"]["source"] == "propagated" and detail["photometry"]["magnitude"] is not None
    preview = person_client(world.a_viewer).get(f"/api/v1/frames/{frames[0].pk}/thumbnail")
    assert preview.status_code == 200 and b"".join(preview.streaming_content)[:4] == b"\x89PNG"


def test_repeated_tasks_and_reuploads_leave_one_set_of_products(world, frame_store):
    frame_bytes = sky_frame(0, seed=5).data
    frame = upload_and_run(world, frame_bytes, "once.fits")
    assert frame.state == "done", frame.state_reason
    snapshot = (frame.observation_id, frame.photometry, frame.quality, frame.timings, frame.wcs_header)
    files = stored_files(frame_store)
    # Every stage again, the whole chain again, and the same file uploaded again.
    for stage in STAGES:
        assert run_stage(frame.pk, stage.name) == "repeat"
    frame_chain(frame.pk).apply()
    again = upload_and_run(world, frame_bytes, "twice.fits")
    assert again.pk == frame.pk
    frame.refresh_from_db()
    assert (frame.observation_id, frame.photometry, frame.quality, frame.timings, frame.wcs_header) == snapshot
    assert Frame.objects.count() == 1 and Observation.objects.count() == 1 and stored_files(frame_store) == files
    # A re-run from scratch replaces the products instead of adding to them.
    response = person_client(world.a_observer).post(f"/api/v1/frames/{frame.pk}/rerun")
    assert response.status_code == 202
    frame_chain(frame.pk).apply()
    frame.refresh_from_db()
    assert frame.state == "done" and frame.observation_id == snapshot[0]
    assert Observation.objects.count() == 1 and stored_files(frame_store) == files
    world.v1.refresh_from_db()
    assert world.v1.total_observations == 1
    assert person_client(world.a_viewer).post(f"/api/v1/frames/{frame.pk}/rerun").status_code == 403


def test_permanent_failures_are_recorded_with_the_reason(world, frame_store):
    blank = sky_frame(0, seed=6, target_mag=None, transparency=0.0)  # no stars at all
    frame = upload_and_run(world, blank.data, "blank.fits")
    assert frame.state == "failed"
    assert frame.state_reason.startswith("solve: ") and "stars" in frame.state_reason
    assert frame.observation_id is None and not frame.preview_key
    status = person_client(world.a_viewer).get("/api/v1/frames/status").json()
    row = next(r for r in status if r["target_id"] == world.v1.pk)
    assert row["failed"] == 1 and row["recent_failures"][0]["state_reason"] == frame.state_reason


def test_frames_of_a_pointing_wait_for_its_first_solve(world, frame_store):
    from django.utils import timezone

    from observations.frame_astrometry import SolveInProgress

    ids = []
    for i, shift in enumerate([(0.0, 0.0), (4.0, -3.0)]):
        response = agent_client(world.a_key).post(
            "/api/v1/frames", {"file": SimpleUploadedFile(f"p{i}.fits", sky_frame(i, shift_px=shift, seed=8).data)},
            format="multipart")
        ids.append(response.json()["id"])
        assert run_stage(ids[-1], "header") == "done"
    # Another worker has started solving the first frame: the second waits instead of solving too.
    Frame.objects.filter(pk=ids[0]).update(active_stage="solve", active_since=timezone.now())
    with pytest.raises(SolveInProgress):
        run_stage(ids[1], "solve")
    Frame.objects.filter(pk=ids[0]).update(active_stage="", active_since=None)
    assert run_stage(ids[0], "solve") == "done" and run_stage(ids[1], "solve") == "done"
    assert [Frame.objects.get(pk=i).wcs_source for i in ids] == ["solved", "propagated"]


def test_the_solve_stage_uses_the_auto_solver_within_the_wall_budget(world, frame_store, monkeypatch):
    from datetime import timedelta

    from datas_pipeline.astrometry import solve as solve_module
    from datas_pipeline.astrometry.limits import wall_budget
    from django.conf import settings
    from django.utils import timezone

    from observations.frame_astrometry import SolveInProgress

    calls = []
    real = solve_module.solve_image

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(solve_module, "solve_image", spy)
    monkeypatch.setattr(settings, "DATAS_SOLVE_CPU_LIMIT_S", 12.0)
    ids = []
    for i, shift in enumerate([(0.0, 0.0), (3.0, 2.0)]):
        response = agent_client(world.a_key).post(
            "/api/v1/frames", {"file": SimpleUploadedFile(f"w{i}.fits", sky_frame(i, shift_px=shift, seed=9).data)},
            format="multipart")
        ids.append(response.json()["id"])
        assert run_stage(ids[-1], "header") == "done"
    # A solve that started 150 s ago is still within its wall budget (170 s for 12 s of CPU;
    # the old window was 2 x 12 + 30 = 54 s): the next frame of the pointing waits for it.
    budget = wall_budget(12.0)
    Frame.objects.filter(pk=ids[0]).update(active_stage="solve",
                                           active_since=timezone.now() - timedelta(seconds=budget - 20))
    with pytest.raises(SolveInProgress):
        run_stage(ids[1], "solve")
    Frame.objects.filter(pk=ids[0]).update(active_stage="", active_since=None)
    assert run_stage(ids[0], "solve") == "done"
    assert len(calls) == 1
    assert calls[0]["solver"] == "auto" and calls[0]["cpu_limit_s"] == 12.0 and calls[0]["timeout_s"] == budget
    assert Frame.objects.get(pk=ids[0]).wcs_source == "solved"
