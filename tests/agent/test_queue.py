"""The durable outbox: order, idempotence, states, backoff, and survival of SIGKILL mid-write."""
from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid

import pytest
from datas_agent.errors import QueueError
from datas_agent.queue import Backoff, Outbox
from datas_agent.storage import atomic_write_bytes, sha256_file

from tests.agent.conftest import agent_env


def test_enqueue_is_ordered_and_idempotent(tmp_path):
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        ids = [str(uuid.uuid4()) for _ in range(3)]
        for oid in ids:
            outbox.enqueue({"observation_id": oid, "filter": "V"})
        outbox.enqueue({"observation_id": ids[0], "filter": "CHANGED"})  # a replay changes nothing
        assert [item.observation_id for item in outbox.items()] == ids
        assert outbox.get(ids[0]).record["filter"] == "V"
        head = outbox.head()
        outbox.mark_record_sent(head, upload_frame=False)
        assert outbox.head().observation_id == ids[1]
        outbox.mark_rejected(outbox.head(), "filter: not one of the site's filters")
        assert outbox.counts() == {"pending": 1, "record_sent": 0, "sent": 1, "rejected": 1}
        assert outbox.requeue_rejected() == 1
        assert outbox.head().observation_id == ids[1]


def test_record_with_frame_waits_for_the_frame(tmp_path):
    frame = tmp_path / "f.fits"
    digest = atomic_write_bytes(frame, b"SIMPLE  =                    T")
    assert digest == sha256_file(frame)
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        item = outbox.enqueue({"observation_id": "a"}, frame_path=frame, frame_sha256=digest)
        outbox.mark_record_sent(item, upload_frame=True)
        assert outbox.head().state == "record_sent"
        outbox.mark_sent(outbox.head())
        assert outbox.head() is None


def test_backoff_grows_and_is_capped():
    backoff = Backoff(base_s=2, max_s=60, jitter=0.0)
    assert [backoff.delay(n) for n in (1, 2, 3, 4, 10)] == [2, 4, 8, 16, 60]


def test_retry_schedules_the_head(tmp_path):
    with Outbox(tmp_path / "q.sqlite3", backoff=Backoff(base_s=10, jitter=0.0)) as outbox:
        outbox.enqueue({"observation_id": "a"})
        delay = outbox.mark_retry(outbox.head(), "HTTP 503", now=1000.0)
        head = outbox.head()
        assert delay == 10 and head.next_attempt_at == 1010.0 and head.attempts == 1
        assert head.last_error == "HTTP 503"


def test_not_a_queue_is_a_clear_error(tmp_path):
    bogus = tmp_path / "q.sqlite3"
    bogus.write_bytes(b"this is not a database" * 100)
    with pytest.raises(QueueError, match="cannot open the upload queue"):
        Outbox(bogus)


WRITER = textwrap.dedent("""
    import sys, uuid
    from pathlib import Path
    from datas_agent.queue import Outbox
    from datas_agent.storage import atomic_write_bytes
    root = Path(sys.argv[1])
    outbox = Outbox(root / "q.sqlite3")
    i = 0
    while True:
        oid = str(uuid.uuid4())
        payload = (oid.encode() * 20000)[:400000]
        frame = root / "frames" / (oid + ".fits")
        digest = atomic_write_bytes(frame, payload)
        outbox.enqueue({"observation_id": oid, "n": i}, frame_path=frame, frame_sha256=digest)
        print(oid, flush=True)   # only after the commit returned
        i += 1
""")


def test_sigkill_mid_write_loses_nothing_committed(tmp_path):
    """Kill a writer at random moments; every acknowledged row and its frame are intact."""
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    acknowledged: list[str] = []
    for delay in (0.3, 0.45, 0.6):
        proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
                                env=agent_env(), text=True)
        try:
            time.sleep(delay)
        finally:
            proc.send_signal(signal.SIGKILL)
            out, _ = proc.communicate(timeout=30)
        acknowledged += out.split()
    assert len(acknowledged) > 3
    db = sqlite3.connect(tmp_path / "q.sqlite3")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.close()
    with Outbox(tmp_path / "q.sqlite3") as outbox:
        items = outbox.items(limit=100000)
        stored = {item.observation_id for item in items}
        assert set(acknowledged) <= stored
        for item in items:  # a committed record always has its complete frame
            assert sha256_file(item.frame_path) == item.frame_sha256
        assert [item.seq for item in items] == sorted(item.seq for item in items)
