"""POST /api/v1/frames: what is accepted, what is refused (and that refusals store nothing)."""
import hashlib
import uuid

import numpy as np
import pytest
from astropy.io import fits
from django.core.files.uploadedfile import SimpleUploadedFile

from observations.frames import Frame
from tests.network.api_helpers import agent_client, person_client
from tests.network.factories import build_world, make_observation, make_site
from tests.observations.conftest import stored_files
from tests.observations.frame_factories import fits_bytes, light_header

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def upload(client, data: bytes, name: str = "m1_001.fits", path: str = "/api/v1/frames", **fields):
    return client.post(path, {"file": SimpleUploadedFile(name, data, content_type="application/fits"), **fields},
                       format="multipart")


def test_agent_upload_stores_the_frame_and_its_header(world, frame_store):
    data = fits_bytes(header=light_header(FILTER="V", OBJECT="Delta Cephei", EXPTIME=30.0))
    response = upload(agent_client(world.a_key), data, sha256=hashlib.sha256(data).hexdigest())
    assert response.status_code == 201, response.content
    body = response.json()
    frame = Frame.objects.get(pk=body["id"])
    assert body["created"] is True and body["sha256"] == hashlib.sha256(data).hexdigest()
    assert (frame.site, frame.network, frame.uploaded_with_key.site) == (world.a_site, world.a, world.a_site)
    assert (frame.width, frame.height, frame.image_type, frame.filter, frame.exposure_s) == (80, 64, "light", "V", 30.0)
    assert frame.header["object_name"] == "Delta Cephei" and frame.state == "received"
    assert frame.observed_at is not None and body["pipeline"]["state"] == "received"
    [path] = stored_files(frame_store)
    assert path.read_bytes() == data and str(path).endswith(frame.storage_key)


def test_the_same_bytes_are_stored_once(world, frame_store):
    data = fits_bytes(seed=3)
    first = upload(agent_client(world.a_key), data)
    again = upload(agent_client(world.a_key), data, name="renamed.fits")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"] and again.json()["created"] is False
    assert "already stored as frame" in again.json()["warnings"][0]
    assert Frame.objects.count() == 1 and len(stored_files(frame_store)) == 1
    # Another network holding the same bytes is another tenant's frame, stored apart.
    assert upload(agent_client(world.b_key), data).status_code == 201
    assert Frame.objects.count() == 2


def test_the_same_bytes_from_another_site_are_a_conflict(world, frame_store):
    data = fits_bytes(seed=4)
    assert upload(agent_client(world.a_key), data).status_code == 201
    other = make_site(world.a, owner=world.a_observer)
    response = upload(person_client(world.a_observer), data, site_id=other.pk)
    assert response.status_code == 409
    assert "already stored as frame" in response.json()["detail"] and f"site {world.a_site.pk}" in response.json()["detail"]


def test_observer_uploads_for_own_site_only(world, frame_store):
    client = person_client(world.a_observer)
    assert upload(client, fits_bytes(seed=5), site_id=world.a_site.pk).status_code == 201
    missing = upload(client, fits_bytes(seed=6))
    assert missing.status_code == 400 and "site_id" in missing.json()
    foreign = upload(client, fits_bytes(seed=7), site_id=world.b_site.pk)
    assert foreign.status_code == 400 and "unknown site" in foreign.json()["site_id"][0]
    assert upload(person_client(world.a_viewer), fits_bytes(seed=8), site_id=world.a_site.pk).status_code == 400
    wrong_target = upload(client, fits_bytes(seed=9), site_id=world.a_site.pk, target_id=world.b_target.pk)
    assert wrong_target.status_code == 400 and "no target" in wrong_target.json()["target_id"][0]


@pytest.mark.parametrize(("content", "message"), [
    (b"\x89PNG\r\n\x1a\n" + b"\0" * 4000, "not a FITS file: it is a PNG image"),
    (b"\x1f\x8b\x08" + b"\0" * 4000, "gzip-compressed"),
    (b"hello, this is text and not an image at all" * 100, "does not start with 'SIMPLE  ='"),
    (b"", "empty"),
])
def test_files_that_are_not_fits_are_refused(world, frame_store, content, message):
    response = upload(agent_client(world.a_key), content, name="picture.fits")
    assert response.status_code == 400
    assert message in response.json()["file"][0]
    assert Frame.objects.count() == 0 and stored_files(frame_store) == []


def test_truncated_files_are_refused_with_how_much_is_missing(world, frame_store):
    data = fits_bytes(seed=10)
    for cut in (len(data) - 2000, len(data) - 100, 4000, 1500):
        response = upload(agent_client(world.a_key), data[:cut])
        assert response.status_code == 400
        assert "truncated" in response.json()["file"][0], response.json()
    assert Frame.objects.count() == 0 and stored_files(frame_store) == []


def test_a_fits_file_without_an_image_is_refused(world, frame_store, tmp_path):
    table = fits.BinTableHDU.from_columns([fits.Column(name="flux", format="D", array=np.arange(3.0))])
    path = tmp_path / "table.fits"
    fits.HDUList([fits.PrimaryHDU(header=light_header()), table]).writeto(path)
    response = upload(agent_client(world.a_key), path.read_bytes())
    assert response.status_code == 400 and "no image data" in response.json()["file"][0]


def test_frames_over_the_size_limit_are_refused_unread(world, frame_store, settings):
    settings.DATAS_MAX_FRAME_BYTES = 5000
    data = fits_bytes(seed=11)
    response = upload(agent_client(world.a_key), data)
    assert response.status_code == 413
    assert "MB" in response.json()["detail"] and "DATAS_MAX_FRAME_BYTES" in response.json()["detail"]
    settings.DATAS_MAX_FRAME_BYTES = len(data) - 1  # within the multipart slack: the file itself is checked
    response = upload(agent_client(world.a_key), data)
    assert response.status_code == 413 and "this portal accepts frames up to" in response.json()["detail"]
    assert Frame.objects.count() == 0 and stored_files(frame_store) == []


@pytest.mark.parametrize(("cards", "message"), [
    ({"DATE-OBS": None}, "no usable time of observation"),
    ({"DATE-OBS": "2099-01-01T00:00:00"}, "is in the future"),
    ({"DATE-OBS": "1970-01-01T00:00:00"}, "before 1980"),
    ({"DATE-OBS": "yesterday evening"}, "no usable time of observation"),
    ({"EXPTIME": None}, "no usable exposure time"),
    ({"EXPTIME": -3.0}, "no usable exposure time"),
    ({"IMAGETYP": "Tricolour"}, "is not light, dark, flat or bias"),
])
def test_insane_headers_are_refused(world, frame_store, cards, message):
    response = upload(agent_client(world.a_key), fits_bytes(header=light_header(**cards)))
    assert response.status_code == 400
    assert message in response.json()["file"][0], response.json()
    assert Frame.objects.count() == 0 and stored_files(frame_store) == []


def test_a_bias_needs_no_exposure_and_missing_extras_are_warnings(world, frame_store):
    header = light_header(IMAGETYP="Bias Frame", EXPTIME=None, FILTER=None, EGAIN=None, **{"CCD-TEMP": None})
    response = upload(agent_client(world.a_key), fits_bytes(header=header))
    assert response.status_code == 201, response.content
    assert response.json()["image_type"] == "bias"
    assert any("sensor temperature" in w for w in response.json()["warnings"])


def test_wrong_request_shapes_get_clear_errors(world, frame_store):
    client = agent_client(world.a_key)
    as_json = client.post("/api/v1/frames", {"file": "SIMPLE"}, format="json")
    assert as_json.status_code == 415 and "multipart/form-data" in as_json.json()["detail"]
    as_text = client.post("/api/v1/frames", {"file": "SIMPLE  = T"}, format="multipart")
    assert as_text.status_code == 400 and "text field" in as_text.json()["file"][0]
    nothing = client.post("/api/v1/frames", {"site_id": world.a_site.pk}, format="multipart")
    assert nothing.status_code == 400 and "missing" in nothing.json()["file"][0]
    data = fits_bytes(seed=12)
    assert upload(client, data, target_id="abc").status_code == 400
    bad_hash = upload(client, data, sha256="12345")
    assert bad_hash.status_code == 400 and "64 hexadecimal" in bad_hash.json()["sha256"][0]
    damaged = upload(client, data, sha256="0" * 64)
    assert damaged.status_code == 400 and "damaged in transit" in damaged.json()["sha256"][0]
    other_site = upload(client, data, site_id=world.b_site.pk)
    assert other_site.status_code == 400 and "this key belongs to site" in other_site.json()["site_id"][0]
    assert Frame.objects.count() == 0


def test_agent_route_links_the_frame_to_its_observation(world, frame_store):
    observation = make_observation(world.a_target, world.a_site)
    data = fits_bytes(seed=13)
    response = upload(agent_client(world.a_key), data, path=f"/api/v1/observations/{observation.observation_id}/frame")
    assert response.status_code == 201, response.content
    frame = Frame.objects.get(pk=response.json()["id"])
    assert frame.observation == observation and frame.target == world.a_target
    assert response.json()["observation_id"] == str(observation.observation_id)
    unknown = upload(agent_client(world.a_key), fits_bytes(seed=14), path=f"/api/v1/observations/{uuid.uuid4()}/frame")
    assert unknown.status_code == 404 and "post the observation first" in unknown.json()["detail"]


def test_upload_queues_the_pipeline_after_commit(world, frame_store, settings, django_capture_on_commit_callbacks):
    settings.DATAS_PIPELINE_ON_UPLOAD = True
    started = []
    import observations.processing as processing

    original = processing.start_frame_pipeline
    processing.start_frame_pipeline = started.append
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = upload(agent_client(world.a_key), fits_bytes(seed=15))
    finally:
        processing.start_frame_pipeline = original
    assert response.status_code == 201 and started == [response.json()["id"]]


def test_frame_pipeline_command_runs_inline_and_reports(world, frame_store):
    from io import StringIO

    from django.core.management import CommandError, call_command

    response = upload(agent_client(world.a_key), fits_bytes(seed=16, header=light_header(IMAGETYP="Dark Frame")))
    frame_id = response.json()["id"]
    out = StringIO()
    call_command("frame_pipeline", str(frame_id), "--inline", stdout=out)
    assert out.getvalue().startswith(f"frame {frame_id}: done")
    frame = Frame.objects.get(pk=frame_id)
    assert frame.notes["solve"] == "dark frame: no astrometry" and frame.preview_key
    with pytest.raises(CommandError, match="nothing to do"):
        call_command("frame_pipeline")
    with pytest.raises(CommandError, match="no frame"):
        call_command("frame_pipeline", "999999")


def test_deleting_a_frame_removes_its_file(world, frame_store, django_capture_on_commit_callbacks):
    response = upload(agent_client(world.a_key), fits_bytes(seed=17))
    frame = Frame.objects.get(pk=response.json()["id"])
    assert len(stored_files(frame_store)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        frame.delete()
    assert stored_files(frame_store) == []
    missing = upload(agent_client(world.a_key), fits_bytes(seed=18)).json()["id"]
    (frame_store / Frame.objects.get(pk=missing).storage_key).unlink()
    assert agent_client(world.a_key).get(f"/api/v1/frames/{missing}/file").status_code == 404
