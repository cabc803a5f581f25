"""Fixtures for alert ingest: the real samples, a Kafka-protocol mock cluster, ZTF packet factories."""
from __future__ import annotations

import io
import os
from pathlib import Path

import fastavro
import pytest

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def samples() -> Path:
    """../shared/data/alerts (or $DATAS_SHARED_DATA/alerts when the checkout lives elsewhere)."""
    base = Path(os.environ.get("DATAS_SHARED_DATA", ROOT.parent / "shared" / "data"))
    folder = base / "alerts"
    if not folder.is_dir():
        pytest.fail(f"{folder} is missing: the real alert samples live beside the checkout")
    return folder


@pytest.fixture(scope="session")
def ztf_packet(samples):
    """Make ZTF packets from the real sample: ``ztf_packet(candid, object_id, ra, dec, mag)`` -> bytes."""
    with open(samples / "ztf_2019_01_10_739260766315010006.avro", "rb") as fh:
        reader = fastavro.reader(fh)
        schema, record = reader.writer_schema, next(iter(reader))
    parsed = fastavro.parse_schema(schema)

    def make(candid: int, object_id: str | None = None, ra: float | None = None, dec: float | None = None,
             magpsf: float | None = None, drb: float | None = None, small: bool = False) -> bytes:
        candidate = dict(record["candidate"], candid=candid)
        if ra is not None:
            candidate.update(ra=ra, dec=dec)
        if magpsf is not None:
            candidate["magpsf"] = magpsf
        if drb is not None:
            candidate["rb"] = drb
        packet = dict(record, candid=candid, objectId=object_id or record["objectId"], candidate=candidate)
        if small:  # the mock cluster keeps only ~5 MB per partition: no cutouts, 10 history rows
            packet.update(cutoutScience=None, cutoutTemplate=None, cutoutDifference=None,
                          prv_candidates=record["prv_candidates"][:10])
        out = io.BytesIO()
        fastavro.writer(out, parsed, [packet])
        return out.getvalue()

    return make


@pytest.fixture
def kafka_cluster():
    """A librdkafka mock cluster speaking the Kafka protocol on loopback; yields bootstrap servers."""
    from confluent_kafka import Producer
    owner = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    servers = ",".join(f"{b.host}:{b.port}" for b in owner.list_topics(timeout=10).brokers.values())
    yield servers
    owner.flush(5)


def produce(servers: str, topic: str, values: list[bytes]) -> None:
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": servers, "log_level": 3})
    for value in values:
        producer.produce(topic, value=value)
        producer.poll(0)
    assert producer.flush(30) == 0
