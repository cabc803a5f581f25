"""ZTF alert packets: Avro Object Container Files (one alert each) from files or broker streams.

The writer schema travels in every packet; parsing it costs more than decoding the alert, so
parsed schemas are cached by their text and the records decoded with fastavro's
``schemaless_reader`` (only the null and deflate codecs occur in alert streams).
"""
from __future__ import annotations

import io
import json
import zlib
from functools import lru_cache
from typing import Any

from fastavro import parse_schema, schemaless_reader
from fastavro.read import HEADER_SCHEMA

from targets.alerts.sources.base import (
    BadPacket,
    ParsedAlert,
    PhotometryPoint,
    Source,
    finite_or_none,
    jd_to_datetime,
)

AVRO_MAGIC = b"Obj\x01"
BANDS = {1: "ztf-g", 2: "ztf-r", 3: "ztf-i"}
# An alert within this distance of a known solar-system object is that object (arcsec).
SOLAR_SYSTEM_MATCH_ARCSEC = 5.0
PAYLOAD_FIELDS = ("magpsf", "sigmapsf", "fid", "isdiffpos", "rb", "drb", "programid", "ndethist", "jdstarthist",
                  "sgscore1", "distpsnr1", "ssdistnr", "ssnamenr")
_HEADER = parse_schema(HEADER_SCHEMA)


@lru_cache(maxsize=16)
def _schema(text: bytes) -> Any:
    return parse_schema(json.loads(text))


def read_avro_records(data: bytes) -> list[dict]:
    """Every record of an Avro Object Container File held in memory.

    Raises
    ------
    BadPacket
        Not an Avro container, an unknown codec, or truncated.
    """
    if not data.startswith(AVRO_MAGIC):
        raise BadPacket("not an Avro container file (no 'Obj\\x01' magic)")
    stream = io.BytesIO(data)
    try:
        header = schemaless_reader(stream, _HEADER)
        meta = header["meta"]
        schema = _schema(meta["avro.schema"])
        codec = meta.get("avro.codec", b"null").decode()
        records = []
        while stream.tell() < len(data):
            count = schemaless_reader(stream, "long")
            size = schemaless_reader(stream, "long")
            block = stream.read(size)
            if len(block) != size:
                raise BadPacket(f"truncated Avro block: {len(block)} of {size} bytes")
            if codec == "deflate":
                block = zlib.decompress(block, -15)
            elif codec != "null":
                raise BadPacket(f"unsupported Avro codec {codec!r}")
            block_stream = io.BytesIO(block)
            records.extend(schemaless_reader(block_stream, schema) for _ in range(count))
            if stream.read(16) != header["sync"]:
                raise BadPacket("corrupt Avro container: a block does not end with the sync marker")
    except BadPacket:
        raise
    except (EOFError, KeyError, ValueError, TypeError, IndexError, UnicodeDecodeError, zlib.error) as exc:
        raise BadPacket(f"unreadable Avro packet: {type(exc).__name__}: {exc}") from exc
    return records


def photometry_point(row: dict) -> PhotometryPoint | None:
    """A detection (with candid) or an upper limit (diffmaglim only) from a candidate record."""
    jd, fid = finite_or_none(row.get("jd")), row.get("fid")
    if jd is None or fid not in BANDS:
        return None
    magnitude = finite_or_none(row.get("magpsf"))
    candid = row.get("candid")
    if magnitude is not None and candid is not None:
        return PhotometryPoint(str(candid), jd, BANDS[fid], magnitude, finite_or_none(row.get("sigmapsf")),
                               finite_or_none(row.get("diffmaglim")))
    limit = finite_or_none(row.get("diffmaglim"))
    if limit is None:
        return None
    return PhotometryPoint(f"ul-{jd:.6f}-{fid}", jd, BANDS[fid], None, None, limit)


def alert_from_record(record: dict) -> ParsedAlert:
    """One ZTF alert record as a `ParsedAlert` (detection plus its 30-day history)."""
    try:
        candidate = record["candidate"]
        object_id = str(record["objectId"])
        candid = int(record["candid"])
        ra, dec = float(candidate["ra"]), float(candidate["dec"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BadPacket(f"not a ZTF alert record: {exc!r} missing or invalid") from exc
    real_bogus = finite_or_none(candidate.get("drb"))
    if real_bogus is None:
        real_bogus = finite_or_none(candidate.get("rb"))
    ss_distance = finite_or_none(candidate.get("ssdistnr"))
    alert_type = ("solar_system" if ss_distance is not None and 0 <= ss_distance <= SOLAR_SYSTEM_MATCH_ARCSEC
                  else "transient")
    points = [photometry_point(row) for row in (record.get("prv_candidates") or [])]
    points.append(photometry_point(candidate))
    return ParsedAlert(
        source="ZTF", external_id=str(candid), event_id=object_id, event_name=object_id, ra_deg=ra % 360.0,
        dec_deg=dec, error_radius_deg=0.1 / 3600, alert_type=alert_type,
        event_time=jd_to_datetime(candidate["jd"]), magnitude=finite_or_none(candidate.get("magpsf")),
        real_bogus=real_bogus, photometry=[p for p in points if p is not None],
        payload={"schemavsn": record.get("schemavsn"), "candidate": {k: candidate.get(k) for k in PAYLOAD_FIELDS}},
    )


class ZtfAvroSource(Source):
    name = "ztf"
    description = "ZTF alert packets (Avro), as files or from a broker's Kafka topic"

    def sniff(self, data: bytes) -> bool:
        return data.startswith(AVRO_MAGIC)

    def parse(self, data: bytes) -> list[ParsedAlert]:
        return [alert_from_record(record) for record in read_avro_records(data)]
