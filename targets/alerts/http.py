"""The one HTTP client polled sources use (tests point its URLs at a local recorded server)."""
from __future__ import annotations

import json

import requests
from django.conf import settings


class FeedHttpError(RuntimeError):
    """A polled service answered with an error (HTTP status, or an error inside a 200 body)."""


class AlertHttpClient:
    """GET and POST with a timeout, a size cap and the TNS bot's User-Agent.

    TNS refuses requests without ``User-Agent: tns_marker{"tns_id": .., "type": "bot", "name": ..}``;
    every request carries it when a bot is configured (harmless elsewhere).
    """

    def __init__(self, timeout_s: float | None = None, max_bytes: int | None = None) -> None:
        self.timeout_s = timeout_s or settings.DATAS_ALERT_HTTP_TIMEOUT_S
        self.max_bytes = max_bytes or settings.DATAS_ALERT_MAX_BYTES * 64
        self.session = requests.Session()
        self.session.headers["User-Agent"] = tns_marker()

    def _read(self, response: requests.Response, url: str) -> bytes:
        if response.status_code != 200:
            raise FeedHttpError(f"{url} answered HTTP {response.status_code}: {response.text[:200]}")
        body = response.content
        if len(body) > self.max_bytes:
            raise FeedHttpError(f"{url} sent {len(body)} bytes, more than the {self.max_bytes} allowed")
        return body

    def get(self, url: str, **params) -> bytes:
        try:
            response = self.session.get(url, params=params or None, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise FeedHttpError(f"{url}: {exc}") from exc
        return self._read(response, url)

    def post(self, url: str, data: dict) -> bytes:
        try:
            response = self.session.post(url, data=data, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise FeedHttpError(f"{url}: {exc}") from exc
        return self._read(response, url)

    def post_json(self, url: str, data: dict) -> dict:
        """POST a form and read a JSON body; TNS-style errors in a 200 body raise `FeedHttpError`."""
        body = self.post(url, data)
        try:
            reply = json.loads(body)
        except ValueError as exc:
            raise FeedHttpError(f"{url} did not answer JSON: {body[:200]!r}") from exc
        code = reply.get("id_code", 200) if isinstance(reply, dict) else 200
        if code != 200:
            raise FeedHttpError(f"{url} refused the request: {code} {reply.get('id_message', '')}".strip())
        return reply


def tns_marker() -> str:
    """The User-Agent TNS requires of bots (from DATAS_TNS_BOT_ID and DATAS_TNS_BOT_NAME)."""
    marker = {"tns_id": settings.DATAS_TNS_BOT_ID, "type": "bot", "name": settings.DATAS_TNS_BOT_NAME}
    return "tns_marker" + json.dumps(marker, separators=(",", ":"))
