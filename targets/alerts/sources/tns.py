"""The Transient Name Server: the public objects CSV (daily deltas, polled) and the bot API.

Every request carries the bot's ``User-Agent: tns_marker{...}`` (see :mod:`targets.alerts.http`);
TNS reports refusals as HTTP 200 with an ``id_code`` in the body, which the client turns into
errors. Since 2024-12-31 the API's object sits directly under ``data`` (no ``reply`` layer).
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import zipfile

from django.conf import settings

from targets.alerts.http import AlertHttpClient
from targets.alerts.sources.base import (
    BadPacket,
    ParsedAlert,
    PolledSource,
    SkippedPacket,
    finite_or_none,
    parse_utc,
)

log = logging.getLogger(__name__)

CSV_COLUMNS = {"objid", "name_prefix", "name", "ra", "declination", "type", "discoverydate", "lastmodified"}
# Daily delta files are kept for a month.
MAX_DAYS_BACK = 30


def _alert(name: str, prefix: str, ra, dec, *, klass: str | None, when: str | None, mag, internal: str | None,
           version: str | None, payload: dict) -> ParsedAlert:
    ra, dec = finite_or_none(ra), finite_or_none(dec)
    if not name or ra is None or dec is None or not -90 <= dec <= 90:
        raise SkippedPacket(f"TNS object {name or '?'}: no name or no valid position")
    aliases = [n.strip() for n in (internal or "").split(",") if n.strip()]
    return ParsedAlert(
        source="TNS", external_id=f"{name}@{version}" if version else name, event_id=name,
        event_name=f"{prefix} {name}".strip(), ra_deg=ra % 360.0, dec_deg=dec, error_radius_deg=1.0 / 3600,
        alert_type="supernova" if (klass or "").startswith("SN") else "transient",
        notice="update" if version else "initial", event_time=parse_utc(when), magnitude=finite_or_none(mag),
        classification={klass: 1.0} if klass else {}, aliases=aliases, payload=payload)


def parse_tns_csv(data: bytes) -> list[ParsedAlert]:
    """The public objects CSV: line 1 is a timestamp preamble, line 2 the header."""
    if data.startswith(b"PK"):
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = archive.read(archive.namelist()[0])
        except (zipfile.BadZipFile, IndexError, KeyError) as exc:
            raise BadPacket(f"unreadable TNS zip: {exc}") from exc
    lines = data.decode("utf-8-sig", errors="replace").splitlines()
    if len(lines) < 2:
        raise BadPacket("a TNS objects CSV has a preamble line and a header")
    reader = csv.DictReader(lines[1:])
    missing = CSV_COLUMNS - set(reader.fieldnames or [])
    if missing:
        raise BadPacket(f"not a TNS objects CSV: missing columns {sorted(missing)}")
    return _each(reader, lambda row: _alert(row["name"], row["name_prefix"], row["ra"], row["declination"], klass=row.get("type") or None,
                   when=row.get("discoverydate"), mag=row.get("discoverymag"), internal=row.get("internal_names"),
                   version=row.get("lastmodified") or None,
                   payload={"objid": row.get("objid"), "redshift": finite_or_none(row.get("redshift")),
                            "reporting_group": row.get("reporting_group")}))


def _each(records, make) -> list[ParsedAlert]:
    """``make`` applied to every record; records without a usable position are logged and left out."""
    alerts = []
    for record in records:
        try:
            alerts.append(make(record))
        except SkippedPacket as exc:
            log.warning("skipped: %s", exc)
    return alerts


def object_records(document: object) -> list[dict]:
    """TNS object records in an API reply, a bare object, a list of them, or a dict of them."""
    if isinstance(document, list):
        return [r for item in document for r in object_records(item)]
    if not isinstance(document, dict):
        return []
    if "objname" in document:
        return [document]
    if "id_code" in document and document.get("id_code") != 200:
        raise BadPacket(f"TNS error {document.get('id_code')}: {document.get('id_message', '')}")
    if isinstance(document.get("data"), dict):
        return object_records(document["data"])
    return [r for value in document.values() for r in object_records(value)]


def parse_tns_object(record: dict) -> ParsedAlert:
    klass = (record.get("object_type") or {}).get("name")
    return _alert(str(record.get("objname") or ""), str(record.get("name_prefix") or ""), record.get("radeg"),
                  record.get("decdeg"), klass=klass, when=record.get("discoverydate"), mag=record.get("discoverymag"),
                  internal=record.get("internal_names"), version=None,
                  payload={"objid": record.get("objid"), "redshift": record.get("redshift"),
                           "hostname": record.get("hostname"), "reporting_group":
                           (record.get("reporting_group") or {}).get("group_name")})


class TnsSource(PolledSource):
    name = "tns"
    description = "Transient Name Server: public objects CSV (polled daily deltas) and bot API JSON"

    def sniff(self, data: bytes) -> bool:
        head = data.lstrip()[:4096]
        if head.startswith(b"{") or head.startswith(b"["):
            return b'"objname"' in data
        return b'"objid","name_prefix"' in head or b"objid,name_prefix" in head

    def parse(self, data: bytes) -> list[ParsedAlert]:
        if data.lstrip()[:1] in (b"{", b"["):
            try:
                document = json.loads(data)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadPacket(f"malformed TNS JSON: {exc}") from exc
            return _each(object_records(document), parse_tns_object)
        return parse_tns_csv(data)

    def get_object(self, client: AlertHttpClient, objname: str) -> ParsedAlert:
        """One object from the bot API (``/api/get/object``)."""
        reply = client.post_json(f"{settings.DATAS_TNS_URL}/api/get/object", {
            "api_key": settings.DATAS_TNS_API_KEY,
            "data": json.dumps({"objname": objname, "objid": "", "photometry": "0", "spectra": "0"})})
        records = object_records(reply)
        if not records:
            raise BadPacket(f"TNS has no object {objname!r}")
        return parse_tns_object(records[0])

    def poll(self, client: AlertHttpClient, cursor: str) -> tuple[list[ParsedAlert], str]:
        """The daily delta files after ``cursor`` (YYYYMMDD) up to yesterday, oldest first."""
        yesterday = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)
        start = (dt.datetime.strptime(cursor, "%Y%m%d").date() + dt.timedelta(days=1) if cursor
                 else yesterday)
        start = max(start, yesterday - dt.timedelta(days=MAX_DAYS_BACK - 1))
        alerts, day, done = [], start, cursor
        while day <= yesterday:
            stamp = day.strftime("%Y%m%d")
            url = f"{settings.DATAS_TNS_URL}/system/files/tns_public_objects/tns_public_objects_{stamp}.csv.zip"
            alerts.extend(parse_tns_csv(client.post(url, {"api_key": settings.DATAS_TNS_API_KEY})))
            done, day = stamp, day + dt.timedelta(days=1)
        return alerts, done
