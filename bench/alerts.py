"""ZTF alert ingest throughput: parse + rule match + store, from files and through Kafka.

Makes N distinct ZTF packets from the real sample (new candid, objectId and position each;
full cutouts and 28-row history), and a network with two sites and a rule (real/bogus, a
magnitude cut, reachable from one site within 24 h: the scheduler's visibility) that about
one alert in ten passes (those become targets with their survey photometry). Times:

- ours, files: :func:`targets.alerts.ingest.ingest_batch` over batches of 500 parsed packets;
- baseline: the naive way, one alert per transaction (same parse, rules and inserts);
- ours, Kafka: the packets produced into librdkafka's mock cluster and consumed by
  :class:`targets.alerts.streams.StreamConsumer` (batch, ingest, commit).

Prints alerts/s for each and the ratio to the naive ingest. Goal: >= 1,000 alerts/s on one core.

Run: DATABASE_URL=postgres://... REDIS_URL=redis://... python bench/alerts.py [--alerts N]
"""
from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "alerts" / "ztf_2019_01_10_739260766315010006.avro"


def make_packets(count: int, sample: Path, seed: int) -> list[bytes]:
    import fastavro
    import numpy as np
    with open(sample, "rb") as fh:
        reader = fastavro.reader(fh)
        schema, record = fastavro.parse_schema(reader.writer_schema), next(iter(reader))
    rng = np.random.default_rng(seed)
    packets = []
    for i in range(count):
        candidate = dict(record["candidate"], candid=seed * 10**7 + i, ra=float(rng.uniform(0, 360)),
                         dec=float(np.degrees(np.arcsin(rng.uniform(-0.5, 1)))), magpsf=float(rng.uniform(14, 21)),
                         rb=float(rng.uniform(0, 1)))
        out = io.BytesIO()
        fastavro.writer(out, schema, [dict(record, candid=candidate["candid"], objectId=f"ZTF26b{seed}{i:07d}",
                                           candidate=candidate)])
        packets.append(out.getvalue())
    return packets


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=5000)
    parser.add_argument("--naive", type=int, default=1000, help="alerts for the one-per-transaction baseline")
    parser.add_argument("--sample", type=Path, default=Path(os.environ.get("DATAS_SHARED_DATA", SAMPLE.parents[1]))
                        / "alerts" / SAMPLE.name)
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        print("bench/alerts.py needs PostgreSQL with q3c: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    import django
    django.setup()
    from django.db import connection

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        return run(args, test_db)
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)


def run(args, test_db: str) -> int:
    from confluent_kafka import Producer

    from bench._common import header
    from network.models import Network
    from targets.alerts.ingest import ingest_batch
    from targets.alerts.sources.ztf import ZtfAvroSource
    from targets.alerts.streams import StreamConfig, StreamConsumer
    from targets.models import Alert, AlertRule
    from tests.network.factories import make_site

    header(f"ZTF alert ingest, {args.alerts} alerts ({args.sample.stat().st_size // 1024} kB packets)")
    network = Network.objects.create(name="Bench", slug="bench")
    make_site(network, name="La Palma")
    make_site(network, name="Siding Spring", latitude=-31.27, longitude=149.06, timezone="Australia/Sydney")
    AlertRule.objects.create(network=network, name="Bright real", sources=["ZTF"], min_real_bogus=0.8,
                             mag_max=17.0, min_sites=1, within_hours=24)
    source = ZtfAvroSource()

    def files(packets: list[bytes], batch: int) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, len(packets), batch):
            ingest_batch(network, [a for p in packets[i:i + batch] for a in source.parse(p)])
        return time.perf_counter() - start, time.process_time() - cpu

    ours_packets = make_packets(args.alerts, args.sample, 1)
    ours_s, ours_cpu = files(ours_packets, 500)
    naive_s, naive_cpu = files(make_packets(args.naive, args.sample, 2), 1)
    ours_rate, naive_rate = args.alerts / ours_s, args.naive / naive_s
    matched = Alert.objects.filter(network=network, status="matched").count()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; 'cpu' = this process's CPU time "
          "(the PostgreSQL server's is not counted)")
    print(f"files, batches of 500            {ours_rate:8.0f} alerts/s wall  {args.alerts / ours_cpu:8.0f} alerts/cpu-s")
    print(f"naive, one alert per transaction {naive_rate:8.0f} alerts/s wall  {args.naive / naive_cpu:8.0f} alerts/cpu-s")
    print(f"ratio ours/naive                 {ours_rate / naive_rate:8.2f}x wall  "
          f"{args.alerts / ours_cpu / (args.naive / naive_cpu):8.2f}x cpu   ({matched} matched in all)")

    owner = Producer({"test.mock.num.brokers": 1, "log_level": 3})
    servers = ",".join(f"{b.host}:{b.port}" for b in owner.list_topics(timeout=10).brokers.values())
    # The mock cluster keeps only ~5 MB per partition: produce in rounds of 50 packets and time only
    # the consumer's work (fetch, parse, rules, ingest, offset commit) on each round.
    kafka_packets = make_packets(min(args.alerts, 1000), args.sample, 3)
    producer = Producer({"bootstrap.servers": servers, "log_level": 3, "message.max.bytes": 10**7})
    consumer = StreamConsumer(StreamConfig(name="bench", topics=("ztf",), bootstrap_servers=servers,
                                           group_id="bench", source="ztf", batch_size=50, poll_timeout_s=0.5,
                                           config={"max.partition.fetch.bytes": 16 * 2**20, "log_level": 3}))
    producer.produce("ztf", value=kafka_packets[0])
    producer.flush(30)
    total_before = Alert.objects.count()
    while Alert.objects.count() == total_before:
        consumer.run_batch()  # joining the group and reading one warm-up packet (not ingest time)
    kafka_s = kafka_cpu = 0.0
    before = Alert.objects.count()
    for first in range(1, len(kafka_packets), 50):
        chunk = kafka_packets[first:first + 50]
        for packet in chunk:
            producer.produce("ztf", value=packet)
        producer.flush(30)
        wanted = Alert.objects.count() + len(chunk)
        start, cpu, deadline = time.perf_counter(), time.process_time(), time.monotonic() + 30
        while Alert.objects.count() < wanted and time.monotonic() < deadline:
            consumer.run_batch()
        kafka_s, kafka_cpu = kafka_s + time.perf_counter() - start, kafka_cpu + time.process_time() - cpu
    consumer.close()
    got = Alert.objects.count() - before
    print(f"kafka (mock cluster), batches 50 {got / kafka_s:8.0f} alerts/s wall  {got / kafka_cpu:8.0f} alerts/cpu-s"
          f"   ({got} alerts; ratio to naive {got / kafka_s / naive_rate:.2f}x wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
