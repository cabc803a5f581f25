"""The API v1 client against a real HTTP server: success, 4xx, 5xx and network failures."""
from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from datas_agent.client import AuthError, DatasClient, RejectedError, TransientError, server_message


def record(**overrides):
    base = {
        "observation_id": str(uuid.uuid4()), "target_id": 1, "filter": "V", "exposure_sec": 30.0, "airmass": 1.2,
        "observed_at": (datetime.now(UTC) - timedelta(minutes=5)).isoformat(),
    }
    base.update(overrides)
    return base


def test_heartbeat_targets_and_idempotent_post(portal):
    portal.targets = [{"id": 1, "name": "RR Lyr"}, {"id": 2, "name": "M 42"}]
    client = DatasClient(portal.url, "dsk_test", "7")
    client.heartbeat("observing", weather={"cloud_cover": 0.1})
    assert portal.heartbeats[0]["status"] == "observing"
    assert portal.heartbeats[0]["weather"] == {"cloud_cover": 0.1, "agent_version": "0.1.0"}
    assert [t["name"] for t in client.ranked_targets(count=1)] == ["RR Lyr"]
    first = record()
    client.post_observation(first)
    client.post_observation(first)  # a retry of the same observation
    assert portal.posts == 2 and list(portal.observations) == [first["observation_id"]]


def test_400_is_rejected_with_the_servers_message(portal):
    client = DatasClient(portal.url, "dsk_test", "7")
    with pytest.raises(RejectedError) as caught:
        client.post_observation(record(filter="Ha", airmass=0.5))
    assert caught.value.status == 400
    assert "filter: 'Ha' is not one of this site's filters (B, V, R)" in caught.value.message
    assert "airmass: must be at least 1" in caught.value.message


def test_wrong_key_is_an_auth_error(portal):
    with pytest.raises(AuthError, match="HTTP 401: Invalid site key"):
        DatasClient(portal.url, "dsk_wrong", "7").ranked_targets()


def test_5xx_and_network_errors_are_transient(portal):
    client = DatasClient(portal.url, "dsk_test", "7", timeout_s=2)
    portal.fail_next = 1
    with pytest.raises(TransientError) as caught:
        client.post_observation(record())
    assert caught.value.status == 503
    portal.fail_next, portal.fail_status = 1, 429
    with pytest.raises(TransientError):
        client.heartbeat("idle")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="cannot connect"):
        DatasClient(f"http://127.0.0.1:{dead_port}", "dsk_test", "7").heartbeat("idle")


def test_server_message_flattens_drf_errors():
    class Fake:
        status_code, reason, text = 400, "Bad Request", ""

        def __init__(self, body):
            self.body = body

        def json(self):
            return self.body

    assert server_message(Fake({"detail": "Not found."})) == "Not found."
    assert server_message(Fake({"photometry": {"magnitude": ["required"]}})) == "photometry.magnitude: required"
    assert server_message(Fake([{"non_field_errors": ["duplicate"]}])) == "duplicate"


def test_heartbeat_sends_the_weather_status(portal):
    DatasClient(portal.url, "dsk_test", "7").heartbeat("observing", weather={"cloud_cover": 0.8},
                                                       weather_status="cloudy")
    assert portal.heartbeats[-1]["weather_status"] == "cloudy"
