"""How the pipeline sorts a stage's errors: retry what may pass, record what needs a person."""
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from django.db import OperationalError

import observations.stages as stages
from observations.frames import Frame
from observations.states import FrameState
from observations.storage import StorageUnavailable
from observations.tasks import backoff_seconds
from tests.network.factories import build_world
from tests.observations.frame_factories import make_frame


def s3_error(code: str, status: int | None) -> ClientError:
    response = {"Error": {"Code": code, "Message": code}}
    if status is not None:
        response["ResponseMetadata"] = {"HTTPStatusCode": status}
    return ClientError(response, "GetObject")


def wrapped(cause: BaseException) -> StorageUnavailable:
    try:
        raise StorageUnavailable(f"could not read the frame: {cause}") from cause
    except StorageUnavailable as exc:
        return exc


@pytest.mark.parametrize(("exc", "transient"), [
    (s3_error("SlowDown", 503), True),
    (s3_error("Throttling", 400), True),
    (s3_error("RequestTimeout", 400), True),
    (s3_error("InternalError", 500), True),
    (s3_error("ServiceUnavailable", None), True),
    (s3_error("503", None), True),
    (s3_error("TooManyRequests", 429), True),
    (s3_error("AccessDenied", 403), False),
    (s3_error("InvalidAccessKeyId", 403), False),
    (s3_error("NoSuchBucket", 404), False),
    (s3_error("403", None), False),
    (wrapped(s3_error("AccessDenied", 403)), False),
    (wrapped(s3_error("SlowDown", 503)), True),
    (StorageUnavailable("connection refused"), True),
    (EndpointConnectionError(endpoint_url="http://s3.invalid"), True),
    (OperationalError("server closed the connection"), True),
    (ValueError("a bug"), False),
])
def test_transient_errors_are_told_from_permanent_ones(exc, transient):
    assert stages.is_transient(exc) is transient


@pytest.mark.django_db
def test_access_denied_fails_the_frame_at_once(monkeypatch):
    frame = make_frame(build_world().a_site, state=FrameState.RECEIVED)

    def denied(key, sha256):
        raise wrapped(s3_error("AccessDenied", 403))

    monkeypatch.setattr(stages, "local_copy", denied)
    assert stages.run_stage(frame.pk, "header") == "failed"
    frame = Frame.objects.get(pk=frame.pk)
    assert frame.state == "failed" and "AccessDenied" in frame.state_reason


@pytest.mark.parametrize("retries", [0, 1, 2, 3, 7, 20])
def test_backoff_is_jittered_between_half_and_all_of_its_ceiling(retries):
    ceiling = min(600, 5 * 2**retries)
    waits = [backoff_seconds(retries) for _ in range(200)]
    assert all(0.5 * ceiling <= w <= ceiling for w in waits)
    assert len(set(waits)) > 100  # jittered, so retries of many frames do not arrive together
