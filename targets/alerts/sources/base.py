"""What every alert source produces, and the base classes sources derive from.

A source turns the bytes of one packet (a file, a Kafka message, an HTTP response) into
:class:`ParsedAlert` objects: plain data, no database. Sources know nothing of networks or
rules; :mod:`targets.alerts.ingest` does the rest.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, ClassVar

from targets.alerts.http import AlertHttpClient

JD_UNIX_EPOCH = 2440587.5


class BadPacket(ValueError):
    """A packet that cannot be read: truncated, malformed, the wrong schema, too large."""


class SkippedPacket(Exception):
    """A well-formed packet that must not become an alert (a test notice, a non-current tense)."""


@dataclass(frozen=True)
class PhotometryPoint:
    """One survey measurement; ``magnitude`` None with ``limiting_mag`` set is an upper limit."""

    point_id: str
    jd: float
    band: str
    magnitude: float | None
    magnitude_error: float | None
    limiting_mag: float | None


@dataclass(frozen=True)
class SkyMap:
    """A HEALPix probability map (``probability`` per pixel, summing to about 1)."""

    nside: int
    nested: bool
    probability: Any  # numpy.ndarray


@dataclass
class ParsedAlert:
    """One notice, in the shape the ingest needs.

    Positions are ICRS degrees; ``error_radius_deg`` is the radius holding ``containment`` of
    the probability (an ellipse, when given, is ``(a_deg, b_deg, position_angle_deg)``).
    ``notice`` is ``initial``, ``update`` or ``retraction``.
    """

    source: str
    external_id: str
    event_id: str
    ra_deg: float | None
    dec_deg: float | None
    error_radius_deg: float = 0.1 / 3600
    event_name: str = ""
    alert_type: str = "transient"
    notice: str = "initial"
    event_time: dt.datetime | None = None
    magnitude: float | None = None
    real_bogus: float | None = None
    classification: dict[str, float] = field(default_factory=dict)
    containment: float = 0.9
    ellipse: tuple[float, float, float] | None = None
    skymap: SkyMap | None = None
    photometry: list[PhotometryPoint] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)
    cites: list[str] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str]:
        return self.source, self.external_id

    @property
    def event_key(self) -> str:
        return f"{self.source}:{self.event_id}"


def jd_to_datetime(jd: float) -> dt.datetime:
    """A Julian date in the UTC scale as an aware UTC datetime (POSIX time ignores leap seconds too)."""
    return dt.datetime.fromtimestamp((float(jd) - JD_UNIX_EPOCH) * 86400.0, dt.UTC)


def parse_utc(text: str | None) -> dt.datetime | None:
    """An ISO-8601 or 'YYYY-MM-DD hh:mm:ss' string as aware UTC (naive means UTC)."""
    if not text:
        return None
    try:
        value = dt.datetime.fromisoformat(str(text).strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadPacket(f"{text!r} is not an ISO-8601 date-time") from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def finite_or_none(value: Any) -> float | None:
    """A float, or None for missing, empty, NaN or sentinel (-999) values."""
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")) or number <= -999:
        return None
    return number


class Source:
    """An alert format. Subclasses set ``name`` and implement :meth:`sniff` and :meth:`parse`."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""

    def sniff(self, data: bytes) -> bool:
        """Whether ``data`` looks like this format (from its content, not a file name)."""
        raise NotImplementedError

    def parse(self, data: bytes) -> list[ParsedAlert]:
        """The alerts in one packet. Raises `BadPacket` or `SkippedPacket`."""
        raise NotImplementedError


class PolledSource(Source):
    """A source read by polling an HTTP service (Celery beat), incrementally from a cursor."""

    def poll(self, client: AlertHttpClient, cursor: str) -> tuple[list[ParsedAlert], str]:
        """Alerts newer than ``cursor`` and the new cursor."""
        raise NotImplementedError
