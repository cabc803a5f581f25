"""Gaia Science Alerts: the public alerts.csv (newest first), polled incrementally.

The header starts with ``#Name`` and has spaces after the commas. ``Date`` is close to UTC
(the alerts' own timescale is TCB); Gaia astrometry is good to about 0.1 arcsec.
"""
from __future__ import annotations

import csv
import io

from django.conf import settings

from targets.alerts.http import AlertHttpClient
from targets.alerts.sources.base import BadPacket, ParsedAlert, PolledSource, finite_or_none, parse_utc

HEADER = "#Name"
COLUMNS = {"#Name", "Date", "RaDeg", "DecDeg", "AlertMag", "Class", "Published"}


def parse_gaia_csv(data: bytes) -> list[ParsedAlert]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise BadPacket(f"the Gaia alerts CSV is not UTF-8: {exc}") from exc
    reader = csv.DictReader(io.StringIO(text), skipinitialspace=True)
    missing = COLUMNS - set(reader.fieldnames or [])
    if missing:
        raise BadPacket(f"not a Gaia alerts CSV: missing columns {sorted(missing)}")
    alerts = []
    for line, row in enumerate(reader, start=2):
        name = (row.get("#Name") or "").strip()
        ra, dec = finite_or_none(row.get("RaDeg")), finite_or_none(row.get("DecDeg"))
        if not name or ra is None or dec is None or not -90 <= dec <= 90:
            raise BadPacket(f"Gaia alerts CSV line {line}: no name or no valid position")
        klass = (row.get("Class") or "").strip()
        tns = (row.get("TNSid") or "").strip()
        alerts.append(ParsedAlert(
            source="Gaia", external_id=name, event_id=name, event_name=name, ra_deg=ra % 360.0, dec_deg=dec,
            error_radius_deg=0.1 / 3600, alert_type="transient", event_time=parse_utc(row.get("Date")),
            magnitude=finite_or_none(row.get("AlertMag")),
            classification={klass: 1.0} if klass and klass.lower() != "unknown" else {},
            aliases=[tns] if tns else [],
            payload={"published": row.get("Published"), "class": klass, "comment": row.get("Comment"),
                     "historic_mag": finite_or_none(row.get("HistoricMag"))},
        ))
    return alerts


class GaiaAlertsSource(PolledSource):
    name = "gaia"
    description = "Gaia Science Alerts CSV (polled)"

    def sniff(self, data: bytes) -> bool:
        return data.lstrip(b"\xef\xbb\xbf").startswith(HEADER.encode())

    def parse(self, data: bytes) -> list[ParsedAlert]:
        return parse_gaia_csv(data)

    def poll(self, client: AlertHttpClient, cursor: str) -> tuple[list[ParsedAlert], str]:
        """Rows published after ``cursor`` (a 'YYYY-MM-DD hh:mm:ss' Published stamp)."""
        alerts = parse_gaia_csv(client.get(settings.DATAS_GAIA_ALERTS_URL))
        fresh = [a for a in alerts if (a.payload.get("published") or "") > cursor]
        newest = max((a.payload["published"] for a in fresh), default=cursor)
        return fresh, newest
