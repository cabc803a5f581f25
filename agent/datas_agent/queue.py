"""The durable outbox: every observation not yet acknowledged by the server, in order.

SQLite in WAL mode with ``synchronous=FULL``: a committed row survives ``kill -9`` and a power
cut. A frame is written to disk (atomically, fsync'ed) *before* its record is committed, so a
committed record always has its complete frame. Each row keeps the observation_id chosen when
the frame was taken; every retry sends that same id and the server stores it exactly once.

States (all transitions are in this module)::

    pending ──record accepted──▶ record_sent ──frame accepted──▶ sent
       │                              │
       └──────── 4xx answer ──────────┴──▶ rejected   (kept, with the server's message)
"""
from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from datas_agent.errors import QueueError

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq             INTEGER PRIMARY KEY AUTOINCREMENT,
    observation_id  TEXT NOT NULL UNIQUE,
    record          TEXT NOT NULL,
    frame_path      TEXT,
    frame_sha256    TEXT,
    upload_frame    INTEGER NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending'
                    CHECK (state IN ('pending', 'record_sent', 'sent', 'rejected')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      REAL NOT NULL,
    sent_at         REAL
);
CREATE INDEX IF NOT EXISTS outbox_open ON outbox (state, seq);
"""
OPEN_STATES = ("pending", "record_sent")


@dataclass(frozen=True)
class QueuedObservation:
    """One row of the outbox."""

    seq: int
    observation_id: str
    record: dict
    frame_path: Path | None
    frame_sha256: str | None
    upload_frame: bool
    state: str
    attempts: int
    next_attempt_at: float
    last_error: str | None
    created_at: float


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter: ``base_s * 2**(attempt-1)``, capped at ``max_s`` seconds."""

    base_s: float = 2.0
    max_s: float = 600.0
    jitter: float = 0.25

    def delay(self, attempts: int, rng: random.Random | None = None) -> float:
        raw = min(self.max_s, self.base_s * 2.0 ** max(attempts - 1, 0))
        spread = (rng or random).uniform(1.0 - self.jitter, 1.0)
        return raw * spread


def _row_to_item(row: sqlite3.Row) -> QueuedObservation:
    return QueuedObservation(
        seq=row["seq"],
        observation_id=row["observation_id"],
        record=json.loads(row["record"]),
        frame_path=Path(row["frame_path"]) if row["frame_path"] else None,
        frame_sha256=row["frame_sha256"],
        upload_frame=bool(row["upload_frame"]),
        state=row["state"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
    )


class Outbox:
    """The SQLite outbox at ``path`` (created on first use).

    One connection per instance; the agent's observing loop and uploader each open their own,
    which WAL allows without blocking readers.
    """

    def __init__(self, path: str | Path, backoff: Backoff | None = None) -> None:
        self.path = Path(path)
        self.backoff = backoff or Backoff()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self._db.row_factory = sqlite3.Row
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on the platter before it returns, even in WAL mode.
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise QueueError(f"{self.path}: cannot open the upload queue ({exc})") from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def enqueue(
        self,
        record: dict,
        frame_path: Path | None = None,
        frame_sha256: str | None = None,
        upload_frame: bool = False,
    ) -> QueuedObservation:
        """Add an observation (idempotent on ``record['observation_id']``) and return its row.

        The frame, if any, must already be durably on disk (``storage.atomic_write_bytes``).
        """
        observation_id = str(record["observation_id"])
        with self._transaction() as db:
            db.execute(
                "INSERT INTO outbox (observation_id, record, frame_path, frame_sha256, upload_frame, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (observation_id) DO NOTHING",
                (observation_id, json.dumps(record, sort_keys=True), str(frame_path) if frame_path else None,
                 frame_sha256, int(upload_frame), time.time()),
            )
        item = self.get(observation_id)
        assert item is not None
        return item

    def get(self, observation_id: str) -> QueuedObservation | None:
        row = self._db.execute("SELECT * FROM outbox WHERE observation_id = ?", (observation_id,)).fetchone()
        return _row_to_item(row) if row else None

    def head(self) -> QueuedObservation | None:
        """The oldest observation not yet acknowledged; uploads go strictly in this order."""
        row = self._db.execute(
            "SELECT * FROM outbox WHERE state IN ('pending', 'record_sent') ORDER BY seq LIMIT 1"
        ).fetchone()
        return _row_to_item(row) if row else None

    def mark_record_sent(self, item: QueuedObservation, upload_frame: bool) -> None:
        """The server stored the record; the frame follows if it (or the site) wants frames."""
        state = "record_sent" if upload_frame and item.frame_path else "sent"
        self._db.execute(
            "UPDATE outbox SET state = ?, upload_frame = ?, attempts = 0, next_attempt_at = 0, last_error = NULL,"
            " sent_at = CASE WHEN ? = 'sent' THEN ? ELSE sent_at END WHERE seq = ?",
            (state, int(upload_frame), state, time.time(), item.seq),
        )

    def mark_sent(self, item: QueuedObservation) -> None:
        self._db.execute(
            "UPDATE outbox SET state = 'sent', last_error = NULL, sent_at = ? WHERE seq = ?",
            (time.time(), item.seq),
        )

    def mark_rejected(self, item: QueuedObservation, message: str) -> None:
        """The server refused it (4xx): kept for the operator, never retried automatically."""
        self._db.execute(
            "UPDATE outbox SET state = 'rejected', last_error = ?, attempts = attempts + 1 WHERE seq = ?",
            (message, item.seq),
        )

    def mark_retry(self, item: QueuedObservation, error: str, now: float | None = None,
                   min_delay_s: float = 0.0) -> float:
        """A transient failure: schedule the next attempt with backoff (at least ``min_delay_s``,
        e.g. the server's Retry-After); return the delay (s)."""
        attempts = item.attempts + 1
        delay = max(self.backoff.delay(attempts), float(min_delay_s))
        self._db.execute(
            "UPDATE outbox SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE seq = ?",
            (attempts, (now if now is not None else time.time()) + delay, error, item.seq),
        )
        return delay

    def requeue_rejected(self) -> int:
        """Put rejected observations back in line (after the operator fixed the cause)."""
        cursor = self._db.execute(
            "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = 0 WHERE state = 'rejected'"
        )
        return cursor.rowcount

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(("pending", "record_sent", "sent", "rejected"), 0)
        for row in self._db.execute("SELECT state, COUNT(*) AS n FROM outbox GROUP BY state"):
            counts[row["state"]] = row["n"]
        return counts

    def items(self, states: tuple[str, ...] = OPEN_STATES, limit: int = 50) -> list[QueuedObservation]:
        marks = ", ".join("?" for _ in states)
        rows = self._db.execute(
            f"SELECT * FROM outbox WHERE state IN ({marks}) ORDER BY seq LIMIT ?", (*states, limit)
        )
        return [_row_to_item(row) for row in rows]
