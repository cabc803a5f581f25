"""Frames on S3, over real HTTP against moto's standalone server: upload, pre-signed upload,
download, and a pipeline stage reading the frame back from the bucket."""
import hashlib
import urllib.error
import urllib.request

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from observations.frames import Frame, FrameUpload
from observations.stages import run_stage
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world
from tests.observations.frame_factories import fits_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return build_world()


def keys(client, bucket) -> list[str]:
    return sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def http(method: str, url: str, data: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_upload_round_trip_through_s3(world, s3_frame_store, settings):
    client, bucket = s3_frame_store
    data = fits_bytes(seed=21)
    response = agent_client(world.a_key).post(
        "/api/v1/frames", {"file": SimpleUploadedFile("s3.fits", data)}, format="multipart")
    assert response.status_code == 201, response.content
    frame = Frame.objects.get(pk=response.json()["id"])
    assert keys(client, bucket) == [frame.storage_key]
    assert client.get_object(Bucket=bucket, Key=frame.storage_key)["Body"].read() == data
    download = agent_client(world.a_key).get(f"/api/v1/frames/{frame.pk}/file")
    assert download.status_code == 302 and download["Location"].startswith(settings.STORAGES["frames"]["OPTIONS"]["endpoint_url"])
    assert http("GET", download["Location"]) == (200, data)
    # The header stage reads the frame back from the bucket, as a worker elsewhere would.
    assert run_stage(frame.pk, "header") == "done"
    frame.refresh_from_db()
    assert frame.state == "header_read" and (frame.width, frame.height) == (80, 64)


def test_presigned_upload_is_validated_then_moved(world, s3_frame_store):
    client, bucket = s3_frame_store
    data = fits_bytes(seed=22)
    sha = hashlib.sha256(data).hexdigest()
    agent = agent_client(world.a_key)
    grant = agent.post("/api/v1/frames/uploads", {"sha256": sha, "size_bytes": len(data), "filename": "big.fits"},
                       format="json")
    assert grant.status_code == 201, grant.content
    instructions = grant.json()["upload"]
    assert instructions["method"] == "PUT" and Frame.objects.count() == 0
    status, _ = http("PUT", instructions["url"], data, instructions["headers"])
    assert status == 200
    assert keys(client, bucket) == [FrameUpload.objects.get().staging_key]
    done = agent.post(grant.json()["complete"], format="json")
    assert done.status_code == 201, done.content
    frame = Frame.objects.get(pk=done.json()["id"])
    assert keys(client, bucket) == [frame.storage_key] and frame.sha256 == sha and frame.original_name == "big.fits"
    assert client.get_object(Bucket=bucket, Key=frame.storage_key)["Body"].read() == data
    assert agent.post(grant.json()["complete"], format="json").status_code == 200  # completing twice is harmless
    again = agent.post("/api/v1/frames/uploads", {"sha256": sha, "size_bytes": len(data)}, format="json")
    assert again.status_code == 200 and again.json()["id"] == frame.pk and again.json()["created"] is False


def test_presigned_upload_of_damaged_or_bad_bytes_is_rejected_and_removed(world, s3_frame_store):
    client, bucket = s3_frame_store
    agent = agent_client(world.a_key)
    data = fits_bytes(seed=23)
    cases = [(data[:-3000], hashlib.sha256(data[:-3000]).hexdigest(), len(data) - 3000, "truncated"),
             (data, "0" * 64, len(data), "damaged in transit"),
             (b"\x89PNG" + b"\0" * 5000, hashlib.sha256(b"\x89PNG" + b"\0" * 5000).hexdigest(), 5004, "PNG")]
    for content, sha, size, message in cases:
        grant = agent.post("/api/v1/frames/uploads", {"sha256": sha, "size_bytes": size}, format="json").json()
        assert http("PUT", grant["upload"]["url"], content, grant["upload"]["headers"])[0] == 200
        done = agent.post(grant["complete"], format="json")
        assert done.status_code == 400 and message in str(done.json()), done.json()
        assert keys(client, bucket) == []
        assert FrameUpload.objects.get(upload_id=grant["upload_id"]).state == "rejected"
    assert Frame.objects.count() == 0
    early = agent.post("/api/v1/frames/uploads", {"sha256": "1" * 64, "size_bytes": 10}, format="json").json()
    assert agent.post(early["complete"], format="json").status_code == 409  # nothing PUT yet
    other = agent_client(world.b_key).post(early["complete"], format="json")
    assert other.status_code == 404  # another network's upload id reads as unknown


def test_presigned_upload_needs_s3(world, frame_store):
    response = agent_client(world.a_key).post("/api/v1/frames/uploads", {"sha256": "1" * 64, "size_bytes": 10},
                                              format="json")
    assert response.status_code == 409 and "POST the file to /api/v1/frames" in response.json()["detail"]


@pytest.mark.parametrize("upload_id", ["-0000000000000000000000000000000", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"])
def test_a_malformed_upload_id_is_unknown_not_an_error(world, upload_id):
    """Found by fuzzing the OpenAPI schema: a malformed id reached the database as a 500."""
    response = agent_client(world.a_key).post(f"/api/v1/frames/uploads/{upload_id}/complete", format="json")
    assert response.status_code == 404
