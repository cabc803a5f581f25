"""VOEvent 2.0 XML packets (classic GCN, ASAS-SN, Gaia, MOA...), read with voevent-parse.

Position, error radius and time come from the library's conversions: Gaia packets state
TDB-ICRS-BARY times, which :func:`voeventparse.get_event_time_as_utc` converts to UTC with
astropy (07:52:27 TDB is 07:51:18.8 UTC). ``role="test"`` and ``"utility"`` packets are skipped;
the ivorn is the external id; a ``Citations/EventIVORN cite="retraction"`` retracts the cited event.
"""
from __future__ import annotations

import datetime as dt

import voeventparse
from lxml import etree

from targets.alerts.sources.base import BadPacket, ParsedAlert, SkippedPacket, Source, finite_or_none

# ivorn authority fragment -> Alert.source value and the event's kind
AUTHORITIES = (("nasa.gsfc.gcn", "GCN", "grb"), ("gaia", "Gaia", "transient"), ("asassn", "ASAS-SN", "transient"),
               ("moa", "other", "microlensing"))
EVENT_ID_PARAMS = ("TrigID", "trigger_id", "event_id")


def _params(event) -> dict[str, str]:
    found: dict[str, str] = {}
    for param in event.What.iter("Param"):
        name = param.attrib.get("name") or param.attrib.get("ucd", "")
        value = param.attrib.get("value")
        if value is None and param.find("Value") is not None:
            value = param.find("Value").text
        if name and value not in (None, ""):
            found.setdefault(name, str(value))
            if param.attrib.get("ucd"):
                found.setdefault(param.attrib["ucd"], str(value))
    return found


def _cited(event, cite: str) -> list[str]:
    if not hasattr(event, "Citations"):
        return []
    return [str(e) for e in event.Citations.iterchildren("EventIVORN") if e.attrib.get("cite") == cite]


def parse_voevent(data: bytes) -> ParsedAlert:
    try:
        event = voeventparse.loads(data)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise BadPacket(f"malformed VOEvent XML: {exc}") from exc
    ivorn, role = event.attrib.get("ivorn", ""), event.attrib.get("role", "")
    if not ivorn:
        raise BadPacket("a VOEvent needs an ivorn")
    if role != "observation":
        raise SkippedPacket(f"{ivorn}: role={role!r} (only 'observation' packets become alerts)")
    source, alert_type = "other", "transient"
    for fragment, name, kind in AUTHORITIES:
        if fragment in ivorn.lower():
            source, alert_type = name, kind
            break
    retracts = _cited(event, "retraction")
    params = _params(event) if hasattr(event, "What") else {}
    stem = ivorn.split("#", 1)[-1]
    event_id = next((f"{ivorn.split('#')[0]}:{params[p]}" for p in EVENT_ID_PARAMS if p in params), "")
    if not event_id and hasattr(event, "Why") and event.Why.find("Inference/Name") is not None:
        event_id = str(event.Why.find("Inference/Name").text)
    event_id = event_id or params.get("meta.id") or stem
    try:
        position = voeventparse.get_event_position(event)
        when = voeventparse.get_event_time_as_utc(event)
    except (AttributeError, ValueError, NotImplementedError) as exc:
        if retracts:
            position, when = None, None
        else:
            raise BadPacket(f"{ivorn}: no usable WhereWhen position and time: {exc}") from exc
    magnitude = finite_or_none(params.get("phot.mag") or params.get("averagemag") or params.get("mag_v"))
    return ParsedAlert(
        source=source, external_id=ivorn[:120], event_id=event_id[:120], event_name=(params.get("meta.id") or stem)[:100],
        ra_deg=None if position is None else position.ra % 360.0, dec_deg=None if position is None else position.dec,
        error_radius_deg=0.0 if position is None else float(position.err or 0.0), alert_type=alert_type,
        notice="retraction" if retracts else "initial", cites=retracts,
        event_time=when.astimezone(dt.UTC) if when else None, magnitude=magnitude,
        payload={"ivorn": ivorn, "coord_system": None if position is None else position.system,
                 "params": dict(list(params.items())[:20])},
    )


class VoEventSource(Source):
    name = "voevent"
    description = "VOEvent 2.0 XML (classic GCN, ASAS-SN, Gaia, MOA)"

    def sniff(self, data: bytes) -> bool:
        head = data.lstrip()[:2048]
        return head.startswith(b"<") and b"VOEvent" in head

    def parse(self, data: bytes) -> list[ParsedAlert]:
        return [parse_voevent(data)]
