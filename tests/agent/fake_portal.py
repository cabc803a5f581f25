"""A small real HTTP server speaking the agent's side of API v1, for client/queue/loop tests.

It stores observations idempotently by observation_id like the real portal, validates a few
fields the way the portal does (400 with a DRF-style message), checks the Bearer key, and can
be told to fail (503) or to drop connections, so the agent's retry logic meets real sockets.
The end-to-end tests use the real Django server instead.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from datetime import UTC, datetime
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


class FakePortal:
    def __init__(self, api_key: str = "dsk_test", site_id: str = "7", filters: tuple[str, ...] = ("B", "V", "R"),
                 targets: list[dict] | None = None, frame_requested: bool = False) -> None:
        self.api_key = api_key
        self.site_id = site_id
        self.filters = filters
        self.targets = targets or []
        self.frame_requested = frame_requested
        self.observations: dict[str, dict] = {}
        self.frames: dict[str, bytes] = {}
        self.posts = 0
        self.heartbeats: list[dict] = []
        self.calls: list[str] = []  # "heartbeat" / "targets", in the order they arrived
        self.fail_next = 0          # answer this many requests with 503
        self.fail_status = 503
        self.retry_after: str | None = None  # a Retry-After header on those failures
        self.delay_s = 0.0          # wait this long before storing each observation
        self.lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, port: int = 0) -> FakePortal:
        portal = self

        class Handler(_Handler):
            pass

        Handler.portal = portal
        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakePortal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- API behaviour ------------------------------------------------------------------------

    def validate(self, record: dict) -> dict:
        errors: dict[str, list[str]] = {}
        if record.get("filter") not in self.filters:
            errors["filter"] = [f"'{record.get('filter')}' is not one of this site's filters ({', '.join(self.filters)})"]
        if not float(record.get("exposure_sec", 0)) > 0:
            errors["exposure_sec"] = ["must be greater than 0"]
        airmass = record.get("airmass")
        if airmass is not None and float(airmass) < 1:
            errors["airmass"] = ["must be at least 1"]
        observed = record.get("observed_at")
        try:
            when = datetime.fromisoformat(str(observed).replace("Z", "+00:00"))
            if when > datetime.now(UTC):
                errors["observed_at"] = ["is in the future"]
        except ValueError:
            errors["observed_at"] = [f"{observed!r} is not an ISO 8601 time"]
        return errors


class _Handler(BaseHTTPRequestHandler):
    portal: FakePortal

    def log_message(self, *args: object) -> None:
        pass

    def _reply(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length", 0))
        return self.rfile.read(length) if length else b""

    def _gate(self) -> bool:
        portal = self.portal
        with portal.lock:
            if portal.fail_next > 0:
                portal.fail_next -= 1
                self._body()
                self._reply(portal.fail_status, {"detail": "temporarily unavailable"},
                            {"Retry-After": portal.retry_after} if portal.retry_after else None)
                return False
        if self.headers.get("Authorization") != f"Bearer {portal.api_key}":
            self._body()
            self._reply(401, {"detail": "Invalid site key."})
            return False
        return True

    def do_PUT(self) -> None:
        if not self._gate():
            return
        path = urlparse(self.path).path
        if path == f"/api/v1/sites/{self.portal.site_id}/heartbeat":
            body = json.loads(self._body() or b"{}")
            self.portal.heartbeats.append(body)
            self.portal.calls.append("heartbeat")
            self._reply(200, {"id": self.portal.site_id, "last_seen": datetime.now(UTC).isoformat()})
            return
        self._reply(404, {"detail": "Not found."})

    def do_GET(self) -> None:
        if not self._gate():
            return
        url = urlparse(self.path)
        if url.path == "/api/v1/targets":
            query = parse_qs(url.query)
            if query.get("site_id") != [self.portal.site_id]:
                self._reply(404, {"detail": "Not found."})
                return
            count = int(query.get("count", ["10"])[0])
            rows = self.portal.targets[:count]
            # Like the portal: an ETag of the list, and 304 (no body) while it is unchanged.
            etag = f'"{hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()[:16]}"'
            if self.headers.get("If-None-Match") == etag:
                self.portal.calls.append("targets-304")
                self.send_response(304)
                self.send_header("ETag", etag)
                self.end_headers()
                return
            self.portal.calls.append("targets")
            self._reply(200, rows, headers={"ETag": etag})
            return
        self._reply(404, {"detail": "Not found."})

    def do_POST(self) -> None:
        if not self._gate():
            return
        path = urlparse(self.path).path
        portal = self.portal
        if path == "/api/v1/observations":
            record = json.loads(self._body())
            if portal.delay_s:
                time.sleep(portal.delay_s)
            errors = portal.validate(record)
            if errors:
                self._reply(400, errors)
                return
            with portal.lock:
                portal.posts += 1
                oid = record["observation_id"]
                created = oid not in portal.observations
                portal.observations.setdefault(oid, record)
            answer = dict(portal.observations[oid], frame_requested=portal.frame_requested)
            self._reply(201 if created else 200, answer)
            return
        if path.startswith("/api/v1/observations/") and path.endswith("/frame"):
            oid = path.split("/")[4]
            if oid not in portal.observations:
                self._body()
                self._reply(404, {"detail": "Not found."})
                return
            with portal.lock:
                portal.frames[oid] = multipart_file(self.headers.get("Content-Type", ""), self._body())
            self._reply(201, {"observation_id": oid, "bytes": len(portal.frames[oid])})
            return
        self._reply(404, {"detail": "Not found."})


def multipart_file(content_type: str, body: bytes, field: str = "file") -> bytes:
    """The bytes of one field of a multipart/form-data body."""
    message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + body)
    for part in message.iter_parts():
        if part.get_param("name", header="content-disposition") == field:
            return part.get_payload(decode=True)
    raise KeyError(field)
