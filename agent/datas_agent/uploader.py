"""Drains the outbox to the server, strictly in order, with backoff on transient failures."""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from datas_agent.client import AuthError, DatasClient, RejectedError, TransientError
from datas_agent.queue import Outbox, QueuedObservation
from datas_agent.storage import sha256_file

log = logging.getLogger(__name__)
FRAME_REQUEST_KEYS = ("frame_requested", "upload_frame", "wants_frame")


@dataclass
class DrainResult:
    """What one :meth:`Uploader.drain` call did and why it stopped."""

    sent: int = 0
    rejected: int = 0
    # Seconds until the head of the queue may be tried again (0 when the queue is empty).
    wait_s: float = 0.0
    blocked_by: str | None = None


class Uploader:
    """Sends queued observations (and their frames when wanted) until the queue is empty or blocked.

    Order is kept: while the oldest observation waits for a retry, the ones behind it wait too,
    so the server receives a night's observations in the order they were taken.
    """

    def __init__(self, outbox: Outbox, client: DatasClient) -> None:
        self.outbox = outbox
        self.client = client

    def drain(self, max_items: int | None = None, now: float | None = None, force: bool = False) -> DrainResult:
        """Send the queue in order until it is empty, blocked, or ``max_items`` were handled.

        ``now`` (Unix seconds) stands in for the clock in tests; ``force`` tries the head at
        once even if its backoff has not run out (an operator's ``datas-agent upload``).
        """
        result = DrainResult()
        while max_items is None or result.sent + result.rejected < max_items:
            item = self.outbox.head()
            if item is None:
                return result
            clock = now if now is not None else time.time()
            if item.next_attempt_at > clock and not force:
                result.wait_s = item.next_attempt_at - clock
                result.blocked_by = item.last_error
                return result
            try:
                self._send(item)
            except RejectedError as exc:
                log.error("server rejected observation %s (not retried): %s", item.observation_id, exc.message)
                self.outbox.mark_rejected(item, exc.message)
                result.rejected += 1
            except AuthError as exc:
                delay = self.outbox.mark_retry(item, exc.message, clock)
                log.error("the server refused this site's API key; %d observation(s) wait in the queue until a "
                          "valid key is configured (next try in %.0f s): %s",
                          self.outbox.counts()["pending"], delay, exc.message)
                result.wait_s, result.blocked_by = delay, exc.message
                return result
            except TransientError as exc:
                delay = self.outbox.mark_retry(item, exc.message, clock, min_delay_s=exc.retry_after_s or 0.0)
                log.warning("upload of %s failed, retry in %.0f s: %s", item.observation_id, delay, exc.message)
                result.wait_s, result.blocked_by = delay, exc.message
                return result
            else:
                result.sent += 1
        return result

    def _send(self, item: QueuedObservation) -> None:
        frame_url = None
        if item.state == "pending":
            answer = self.client.post_observation(item.record)
            wants_frame = item.upload_frame or any(bool(answer.get(key)) for key in FRAME_REQUEST_KEYS)
            self.outbox.mark_record_sent(item, wants_frame)
            log.info("observation %s stored by the server", item.observation_id)
            if not (wants_frame and item.frame_path):
                return
            frame_url = answer.get("frame_upload_url")
        path = item.frame_path
        assert path is not None
        if not path.is_file() or (item.frame_sha256 and sha256_file(path) != item.frame_sha256):
            raise RejectedError(f"frame {path} is missing or damaged on this disk; the record is on the "
                                "server without it")
        self.client.upload_frame(item.observation_id, path, item.frame_sha256, url=frame_url)
        self.outbox.mark_sent(item)
        log.info("frame of %s uploaded", item.observation_id)
