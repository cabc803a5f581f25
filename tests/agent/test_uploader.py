"""Uploads: in order, once each, through server outages, rejections and SIGKILL of the uploader."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

from datas_agent.client import DatasClient
from datas_agent.config import load_config
from datas_agent.queue import Backoff, Outbox
from datas_agent.storage import atomic_write_bytes
from datas_agent.uploader import Uploader

from tests.agent.conftest import agent_env, write_config


def make_record(filter_name="V", **extra):
    return {"observation_id": str(uuid.uuid4()), "target_id": 1, "filter": filter_name, "exposure_sec": 10.0,
            "airmass": 1.1, "observed_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
            **extra}


def fill(outbox, n, **kwargs):
    return [outbox.enqueue(make_record(**kwargs)).observation_id for _ in range(n)]


def test_drains_in_order(tmp_path, portal):
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        ids = fill(outbox, 5)
        result = Uploader(outbox, DatasClient(portal.url, "dsk_test", "7")).drain()
        assert result.sent == 5 and outbox.head() is None
    assert list(portal.observations) == ids


def test_outage_blocks_the_head_then_resumes_in_order(tmp_path, portal):
    with Outbox(tmp_path / "q.sqlite3", backoff=Backoff(base_s=5, jitter=0)) as outbox:
        ids = fill(outbox, 3)
        uploader = Uploader(outbox, DatasClient(portal.url, "dsk_test", "7"))
        portal.fail_next = 2
        first = uploader.drain(now=0.0)
        assert first.sent == 0 and first.wait_s == 5 and "HTTP 503" in first.blocked_by
        assert uploader.drain(now=1.0).sent == 0  # still backing off: nothing was sent
        second = uploader.drain(now=5.0)
        assert second.sent == 0 and second.wait_s == 10  # second failure doubles the wait
        assert uploader.drain(now=20.0).sent == 3
    assert list(portal.observations) == ids


def test_rejected_observation_is_kept_and_skipped(tmp_path, portal):
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        good1 = fill(outbox, 1)
        bad = fill(outbox, 1, filter_name="Ha")
        good2 = fill(outbox, 1)
        result = Uploader(outbox, DatasClient(portal.url, "dsk_test", "7")).drain()
        assert (result.sent, result.rejected) == (2, 1)
        rejected = outbox.get(bad[0])
        assert rejected.state == "rejected"
        assert "filter: 'Ha' is not one of this site's filters" in rejected.last_error
    assert list(portal.observations) == good1 + good2


def test_rejected_key_keeps_everything_queued(tmp_path, portal):
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        fill(outbox, 2)
        result = Uploader(outbox, DatasClient(portal.url, "dsk_revoked", "7")).drain()
        assert result.sent == 0 and "Invalid site key" in result.blocked_by
        assert outbox.counts()["pending"] == 2


def test_frames_follow_their_records_when_the_server_asks(tmp_path, portal):
    portal.frame_requested = True
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        frame = tmp_path / "x.fits"
        digest = atomic_write_bytes(frame, b"SIMPLE  = T" + bytes(2869))
        item = outbox.enqueue(make_record(), frame_path=frame, frame_sha256=digest)
        assert Uploader(outbox, DatasClient(portal.url, "dsk_test", "7")).drain().sent == 1
        assert outbox.get(item.observation_id).state == "sent"
    assert portal.frames[item.observation_id] == frame.read_bytes()


def test_sigkill_mid_upload_repeatedly_every_observation_once(tmp_path, portal):
    """`datas-agent upload` killed again and again mid-request; the server ends with each record once."""
    config_path = write_config(tmp_path, portal.url)
    config = load_config(config_path)
    with Outbox(config.queue_path) as outbox:
        ids = fill(outbox, 12)
    portal.delay_s = 0.15  # a slow server, so the kills land mid-request
    kills = 0
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "datas_agent", "upload", str(config_path)],
                                env=agent_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.9)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait(timeout=30)
    portal.delay_s = 0.0
    done = subprocess.run([sys.executable, "-m", "datas_agent", "upload", str(config_path)],
                          env=agent_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert kills >= 1
    assert list(portal.observations) == ids  # each exactly once, in order
    assert portal.posts >= len(ids)


def test_status_shows_what_is_pending_and_why(tmp_path, portal):
    config_path = write_config(tmp_path, portal.url)
    with Outbox(load_config(config_path).queue_path) as outbox:
        fill(outbox, 2)
        fill(outbox, 1, filter_name="Ha")
    portal.fail_next = 1
    run = [sys.executable, "-m", "datas_agent"]
    upload = subprocess.run([*run, "upload", str(config_path)], env=agent_env(), capture_output=True, text=True)
    assert upload.returncode == 1 and "HTTP 503" in upload.stderr
    status = subprocess.run([*run, "status", str(config_path)], env=agent_env(), capture_output=True, text=True)
    assert status.returncode == 0, status.stderr
    assert "pending 3 (frame still to upload: 0), sent 0, rejected 0" in status.stdout
    assert "last error: POST" in status.stdout and "HTTP 503" in status.stdout


def test_the_servers_retry_after_is_the_schedule(tmp_path, portal):
    """Found in review: Retry-After changed only the log line; the agent retried in 2 s."""
    with Outbox(tmp_path / "q.sqlite3", backoff=Backoff(base_s=2, jitter=0)) as outbox:
        fill(outbox, 1)
        uploader = Uploader(outbox, DatasClient(portal.url, "dsk_test", "7"))
        portal.fail_next, portal.retry_after = 1, "3600"
        assert uploader.drain(now=0.0).wait_s == 3600
        assert outbox.head().next_attempt_at == 3600
        assert uploader.drain(now=10.0).sent == 0  # the server asked for an hour


def test_a_forced_upload_that_fails_leaves_a_finite_schedule(tmp_path, portal):
    """Found in review: `datas-agent upload` drained with now=inf, so one failure scheduled the
    head for t=inf and blocked every later observation for good."""
    with Outbox(tmp_path / "q.sqlite3", backoff=Backoff(base_s=2, jitter=0)) as outbox:
        ids = fill(outbox, 2)
        uploader = Uploader(outbox, DatasClient(portal.url, "dsk_test", "7"))
        portal.fail_next = 1
        before = time.time()
        assert uploader.drain(force=True).sent == 0
        assert before + 2 <= outbox.head().next_attempt_at <= time.time() + 2
        assert uploader.drain(force=True).sent == 2  # forced again: no waiting for the backoff
    assert list(portal.observations) == ids
