"""GCN notices in the new JSON format (Kafka topics per mission), identified by ``$schema``.

Only ``alert_tense == current`` becomes an alert (archival, planned, injection, test notices
are skipped). ``alert_type == retraction`` retracts the event; the event is (mission, id[0]).
"""
from __future__ import annotations

import base64
import io
import json
import re

import numpy as np

from targets.alerts.sources.base import (
    BadPacket,
    ParsedAlert,
    SkippedPacket,
    SkyMap,
    Source,
    finite_or_none,
    parse_utc,
)

SCHEMA_PATTERN = re.compile(r"gcn/notices/(?P<path>[\w./-]+?)\.schema\.json$")
NOTICE_TYPES = {"initial", "update", "retraction"}
# Kinds of event by schema family when the notice has no classification.
FAMILY_TYPES = {"icecube": "neutrino", "lvk": "gw", "igwn": "gw", "fermi": "grb", "swift": "grb", "svom": "grb",
                "einstein_probe": "x_ray", "maxi": "x_ray"}


def _json(data: bytes) -> dict:
    try:
        notice = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadPacket(f"malformed JSON: {exc}") from exc
    if not isinstance(notice, dict):
        raise BadPacket("a GCN notice is a JSON object")
    return notice


def _localisation(notice: dict) -> dict:
    """The notice's position: top level, else IceCube's best coincident event."""
    if finite_or_none(notice.get("ra")) is not None:
        return notice
    events = [e.get("localization") or {} for e in notice.get("coincident_events") or [] if isinstance(e, dict)]
    direction = notice.get("most_probable_direction") or {}
    if events and finite_or_none(direction.get("ra")) is not None:
        return {**events[0], "ra": direction["ra"], "dec": direction["dec"]}
    return events[0] if events else {}


def _skymap(notice: dict) -> SkyMap | None:
    encoded = notice.get("healpix_file")
    if not encoded:
        return None
    from astropy.io import fits
    try:
        with fits.open(io.BytesIO(base64.b64decode(encoded))) as hdul:
            table = hdul[1]
            probability = np.asarray(table.data.field(0), dtype=float).ravel()
            ordering = str(table.header.get("ORDERING", "RING")).upper()
    except (OSError, ValueError, IndexError, TypeError) as exc:
        raise BadPacket(f"unreadable healpix_file: {exc}") from exc
    nside = int(round(np.sqrt(probability.size / 12)))
    if 12 * nside * nside != probability.size or probability.sum() <= 0:
        raise BadPacket("healpix_file is not a HEALPix probability map")
    return SkyMap(nside, ordering == "NESTED", probability / probability.sum())


def parse_notice(notice: dict) -> ParsedAlert:
    match = SCHEMA_PATTERN.search(str(notice.get("$schema", "")))
    if match is None:
        raise BadPacket(f"not a GCN notice: $schema {notice.get('$schema')!r} is not a gcn/notices schema")
    path = match.group("path")
    tense = notice.get("alert_tense", "current")
    if tense != "current":
        raise SkippedPacket(f"alert_tense is {tense!r}, not 'current'")
    notice_type = str(notice.get("alert_type") or "initial")
    notice_type = notice_type if notice_type in NOTICE_TYPES else "update"
    mission = str(notice.get("mission") or path.split("/")[0])
    ids = notice.get("id") or notice.get("ref_ID") or notice.get("event_name")
    ids = [ids] if isinstance(ids, str) else list(ids or [])
    if not ids:
        raise BadPacket("the notice has no id, ref_ID or event_name to name its event")
    event_id = f"{mission}:{ids[0]}"
    where = _localisation(notice)
    ra, dec = finite_or_none(where.get("ra")), finite_or_none(where.get("dec"))
    if notice_type != "retraction" and (ra is None or dec is None):
        raise SkippedPacket(f"{event_id}: the notice gives no position")
    if dec is not None and not -90 <= dec <= 90:
        raise BadPacket(f"{event_id}: dec {dec} is outside [-90, 90]")
    error, ellipse = where.get("ra_dec_error"), None
    if isinstance(error, list):
        if len(error) != 3 or any(finite_or_none(v) is None for v in error):
            raise BadPacket(f"{event_id}: ra_dec_error ellipse must be [a, b, position angle]")
        ellipse = (float(error[0]), float(error[1]), float(error[2]))
        radius = ellipse[0]
    else:
        radius = finite_or_none(error) or 0.0
    classification = {str(k): float(v) for k, v in (notice.get("classification") or {}).items()
                      if finite_or_none(v) is not None}
    family = path.split("/")[0].lower()
    alert_type = (max(classification, key=classification.get).lower() if classification
                  else FAMILY_TYPES.get(family, "high_energy"))
    record = notice.get("record_number") or notice.get("alert_datetime") or ""
    name = notice.get("event_name") or f"{mission} {ids[-1]}"
    return ParsedAlert(
        source="GCN", external_id=f"{event_id}/{notice_type}/{record}"[:120], event_id=event_id, event_name=name,
        ra_deg=None if ra is None else ra % 360.0, dec_deg=dec, error_radius_deg=max(radius, 0.0),
        containment=finite_or_none(where.get("containment_probability")) or 0.9, ellipse=ellipse,
        alert_type=alert_type, notice=notice_type,
        event_time=parse_utc(notice.get("trigger_time") or notice.get("alert_datetime")),
        classification=classification, skymap=_skymap(notice),
        payload={"schema": path, "mission": mission, "instrument": notice.get("instrument"),
                 "alert_datetime": notice.get("alert_datetime"), "far": notice.get("far"),
                 "rate_snr": notice.get("rate_snr")},
    )


class GcnJsonSource(Source):
    name = "gcn"
    description = "GCN Kafka JSON notices (identified by their $schema)"

    def sniff(self, data: bytes) -> bool:
        head = data.lstrip()[:4096]
        return head.startswith(b"{") and b"gcn/notices/" in head

    def parse(self, data: bytes) -> list[ParsedAlert]:
        return [parse_notice(_json(data))]
