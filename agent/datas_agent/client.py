"""HTTP client for the DATAS API v1, as a site agent uses it (``Authorization: Bearer <site key>``).

Failures come out as one of three exceptions, which decide what the agent does next:

- :class:`TransientError`: a network error, a timeout, 5xx, 408 or 429. Retry later, with backoff.
- :class:`AuthError`: 401/403. The site key was rejected or revoked. Nothing is dropped; the
  agent keeps its queue and says so until an operator installs a valid key.
- :class:`RejectedError`: any other 4xx. The server refused this request and says why (its
  message is kept); retrying the same request cannot succeed.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from datas_agent import __version__

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"


class ApiError(Exception):
    """Base class for API failures; ``status`` is the HTTP status (``None`` for network errors)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class TransientError(ApiError):
    """The server could not be reached or failed (5xx, 408, 429): try again later."""

    def __init__(self, message: str, status: int | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, status)
        self.retry_after_s = retry_after_s


class AuthError(ApiError):
    """The server refused the site key (401/403)."""


class RejectedError(ApiError):
    """The server refused the request itself (4xx other than 401/403/408/429)."""


def server_message(response: requests.Response) -> str:
    """The server's explanation of a failure, flattened to one line (DRF error bodies included)."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip()
        return text[:500] if text else response.reason or f"HTTP {response.status_code}"
    return _flatten_errors(body) or f"HTTP {response.status_code}"


def _flatten_errors(body: Any, prefix: str = "") -> str:
    if isinstance(body, dict):
        if "detail" in body and len(body) == 1:
            return _flatten_errors(body["detail"], prefix)
        parts = [_flatten_errors(value, f"{prefix}{key}." if key != "non_field_errors" else prefix)
                 for key, value in body.items()]
        return "; ".join(p for p in parts if p)
    if isinstance(body, list):
        return "; ".join(p for p in (_flatten_errors(item, prefix) for item in body) if p)
    label = prefix.rstrip(".")
    return f"{label}: {body}" if label else str(body)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class DatasClient:
    """The API calls a site agent makes.

    Parameters
    ----------
    base_url : str
        The portal, e.g. ``https://datas.example.org`` (``/api/v1`` is appended).
    api_key : str
        The site key, sent as a Bearer token; never logged.
    site_id : str
        This site's id on the portal.
    timeout_s : float
        Connect and read timeout per request, seconds.
    """

    def __init__(self, base_url: str, api_key: str, site_id: str, timeout_s: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.site_id = str(site_id)
        self.timeout_s = timeout_s
        self._session = requests.Session()
        self._session.headers.update({
            "Authorization": f"Bearer {api_key}",
            "Accept": "application/json",
            "User-Agent": f"datas-agent/{__version__}",
        })

    def close(self) -> None:
        self._session.close()

    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        if not path.startswith(API_PREFIX):
            path = API_PREFIX + path
        return self.base_url + path

    def send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Send one request; return the response of any status below 400, raise an ApiError otherwise."""
        url = self._url(path)
        try:
            response = self._session.request(method, url, timeout=self.timeout_s, **kwargs)
        except requests.Timeout:
            raise TransientError(f"{method} {url}: no answer within {self.timeout_s:g} s") from None
        except requests.ConnectionError as exc:
            reason = exc.args[0] if exc.args else exc
            raise TransientError(f"{method} {url}: cannot connect ({_short(reason)})") from None
        except requests.RequestException as exc:
            raise TransientError(f"{method} {url}: {exc}") from None
        status = response.status_code
        if status >= 400:
            message = f"{method} {url} -> HTTP {status}: {server_message(response)}"
            if status >= 500 or status in (408, 429):
                raise TransientError(message, status, _retry_after(response))
            if status in (401, 403):
                raise AuthError(message, status)
            raise RejectedError(message, status)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send one request and return the decoded JSON body (``None`` when empty)."""
        response = self.send(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"{method} {response.url}: HTTP {response.status_code} but the body is not JSON") from None

    # -- the agent's calls -------------------------------------------------------------------

    def heartbeat(self, status: str, weather: dict | None = None, details: dict | None = None,
                  weather_status: str | None = None) -> dict:
        """``PUT /sites/{id}/heartbeat``: the site is alive; returns the server's answer."""
        body: dict[str, Any] = {"status": status}
        if weather_status:
            body["weather_status"] = weather_status
        weather = dict(weather or {})
        if details:  # the portal keeps free-form readings; the agent's own state rides along
            weather.update({f"agent_{key}": value for key, value in details.items()})
        weather["agent_version"] = __version__
        body["weather"] = weather
        return self.request("PUT", f"/sites/{self.site_id}/heartbeat", json=body) or {}

    def ranked_targets(self, count: int = 10) -> list[dict]:
        """``GET /targets?site_id=&count=``: the site's ranked list, best first."""
        entries = self.ranked_list(count).entries
        assert entries is not None  # no ETag sent: never "not modified"
        return entries

    def ranked_list(self, count: int = 10, etag: str | None = None) -> RankedList:
        """The site's ranked list; with the ETag of the last one, a cheap "not modified" when it has not changed.

        The server answers ``304 Not Modified`` (no body) to ``If-None-Match: <etag>`` while the
        list, its order and its plans are unchanged, so an idle poll costs one cache read.
        """
        headers = {"If-None-Match": etag} if etag else {}
        response = self.send("GET", "/targets", params={"site_id": self.site_id, "count": count}, headers=headers)
        new_etag = response.headers.get("ETag") or None
        if response.status_code == 304:
            return RankedList(None, new_etag or etag, not_modified=True)
        try:
            body = response.json()
        except ValueError:
            raise TransientError("GET /targets: the body is not JSON") from None
        if isinstance(body, dict):
            body = body.get("results", body.get("targets", []))
        if not isinstance(body, list):
            raise TransientError("GET /targets: expected a list of targets")
        return RankedList(body, new_etag)

    def post_observation(self, record: dict) -> dict:
        """``POST /observations``: idempotent on ``record['observation_id']``."""
        body = self.request("POST", "/observations", json=record)
        if isinstance(body, list):
            body = body[0] if body else {}
        return body or {}

    def upload_frame(self, observation_id: str, path: Path, sha256: str | None, url: str | None = None) -> dict:
        """``POST /observations/{observation_id}/frame`` (multipart ``file``); idempotent."""
        target = url or f"/observations/{observation_id}/frame"
        with open(path, "rb") as handle:
            files = {"file": (Path(path).name, handle, "application/fits")}
            data = {"sha256": sha256} if sha256 else {}
            return self.request("POST", target, files=files, data=data) or {}


@dataclass(frozen=True)
class RankedList:
    """One poll of the ranked list: its entries (``None`` when not modified since ``etag``) and ETag."""

    entries: list[dict] | None
    etag: str | None
    not_modified: bool = False


def _short(reason: object) -> str:
    text = str(reason)
    # urllib3 buries the useful part ("Connection refused") at the end of a long repr.
    for marker in ("Connection refused", "Name or service not known", "timed out", "No route to host",
                   "Temporary failure in name resolution", "Connection reset"):
        if marker in text:
            return marker
    return text[:200]
