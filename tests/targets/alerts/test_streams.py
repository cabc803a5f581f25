"""The Kafka path against librdkafka's mock cluster: a GCN notice reaches a night-side site's list at
once and its retraction removes it; bad packets are skipped; a SIGKILL mid-batch loses and
duplicates nothing."""
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.db import connection

from scheduling.passes import cached_list
from targets.alerts.sources.ztf import ZtfAvroSource
from targets.alerts.streams import StreamConfig, StreamConsumer
from targets.models import Alert, AlertFeed, AlertRule, SurveyPhotometry, Target
from tests.network.api_helpers import agent_client
from tests.network.factories import build_world, make_network, make_site
from tests.scheduling.helpers import clear_skies
from tests.targets.alerts.conftest import produce

# librdkafka's mock cluster keeps its own timers, which libfaketime stalls: the moved-clock
# pass of scripts/test.sh leaves these out (the alert logic itself runs there in the other tests).
pytestmark = pytest.mark.kafka

ROOT = Path(__file__).resolve().parents[3]


def consume_until(consumer: StreamConsumer, done, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "the stream did not deliver in time"
        consumer.run_batch()


@pytest.mark.django_db(transaction=True)
def test_gcn_notice_reaches_night_site_at_once_and_retraction_removes_it(kafka_cluster, samples, scheduler_night):
    world = build_world()
    night_site = world.a_site  # La Palma, dark at NIGHT
    day_site = make_site(world.a, name="Siding Spring", latitude=-31.27, longitude=149.06, timezone="Australia/Sydney")
    clear_skies(night_site, day_site)
    AlertRule.objects.create(network=world.a, name="Seen by both", sources=["GCN"], min_sites=2, within_hours=3,
                             position=1)
    AlertRule.objects.create(network=world.a, name="GRBs tonight", sources=["GCN"], min_sites=1, within_hours=3,
                             time_critical_hours=6, target_priority=50, position=2)
    notice = json.loads((samples / "gcn_kafka_maxi_gsc.unknown.ellipse.example.json").read_bytes())
    notice |= {"ra": 350.0, "dec": 40.0, "ra_dec_error": 0.05, "alert_type": "initial",
               "trigger_time": (scheduler_night - dt.timedelta(minutes=10)).isoformat()}
    retraction = {k: notice[k] for k in ("$schema", "mission", "id", "alert_tense")} | {
        "alert_type": "retraction", "record_number": 2}
    produce(kafka_cluster, "gcn.notices.maxi", [b"{not json", json.dumps(notice).encode()])
    consumer = StreamConsumer(StreamConfig(name="gcn-test", topics=("gcn.notices.maxi",),
                                           bootstrap_servers=kafka_cluster, group_id="datas-test", source="gcn",
                                           batch_size=10))
    try:
        consume_until(consumer, lambda: Alert.objects.filter(network=world.a).exists())
        alert = Alert.objects.get(network=world.a)
        assert (alert.status, alert.rule.name) == ("matched", "GRBs tonight")
        assert alert.rule_report[0]["reasons"] == ["observable from 1 of 2 sites within 3 h; needs 2"]
        target = alert.target
        # the urgent pass ran on commit: the cached list has it, no beat and no worker needed
        assert target.pk in [e["target_id"] for e in cached_list(night_site.pk)["entries"]]
        ranked = agent_client(world.a_key).get("/api/v1/targets").json()
        assert ranked["targets"][0]["name"] == "GRB 230220A" and ranked["targets"][0]["plan"]["urgent"]
        assert not Alert.objects.filter(network=world.b).exists()  # net-b has no rule
        feed = AlertFeed.objects.get(name="gcn-test")
        assert (feed.messages, feed.skipped, feed.alerts) == (2, 1, 1) and "malformed JSON" in feed.last_error

        produce(kafka_cluster, "gcn.notices.maxi", [json.dumps(retraction).encode()])
        consume_until(consumer, lambda: Alert.objects.filter(status="retracted").count() == 2)
        target.refresh_from_db()
        assert not target.is_active
        assert target.pk not in [e["target_id"] for e in cached_list(night_site.pk)["entries"]]
        names = [t["name"] for t in agent_client(world.a_key).get("/api/v1/targets").json()["targets"]]
        assert "GRB 230220A" not in names
    finally:
        consumer.close()


def start_streams(servers: str, log_path: Path) -> subprocess.Popen:
    url = os.environ["DATABASE_URL"].rsplit("/", 1)[0] + "/" + connection.settings_dict["NAME"]
    streams = [{"name": "ztf-test", "source": "ztf", "topics": ["ztf"], "bootstrap_servers": servers,
                "group_id": "datas-kill", "batch_size": 20,
                # the dead consumer's partitions move to the new one after this session timeout
                "config": {"log_level": 3, "session.timeout.ms": 6000, "heartbeat.interval.ms": 500}}]
    env = os.environ | {"DATABASE_URL": url, "REDIS_URL": django_settings.REDIS_URL, "LOG_LEVEL": "WARNING",
                        "DATAS_ALERT_STREAMS": json.dumps(streams), "DJANGO_SETTINGS_MODULE": "network.settings"}
    with open(log_path, "ab") as out:
        return subprocess.Popen([sys.executable, "manage.py", "run_alert_streams", "--health-every", "1"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
@pytest.mark.postgres_only  # a second process shares the test database
@pytest.mark.django_db(transaction=True)
def test_sigkill_mid_batch_loses_and_duplicates_nothing(kafka_cluster, ztf_packet, tmp_path):
    network = make_network("Kill", slug="kill")
    AlertRule.objects.create(network=network, name="Bright ZTF", sources=["ZTF"], mag_max=16.0)
    total = 120  # the mock cluster keeps only a few MB per partition: more would age out before they are read
    packets = [ztf_packet(10_000 + i, f"ZTF26kill{i:05d}", ra=(i * 1.19) % 360, dec=-20 + (i % 80),
                          magpsf=15.0 if i % 2 == 0 else 18.0, small=True) for i in range(total)]
    points = len(ZtfAvroSource().parse(packets[0])[0].photometry)
    produce(kafka_cluster, "ztf", packets)
    log = tmp_path / "streams.log"
    first = start_streams(kafka_cluster, log)
    try:
        deadline = time.monotonic() + 120
        while not Alert.objects.filter(network=network).exists():
            assert first.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # somewhere inside a later batch
        first.wait(10)
        stored_at_kill = Alert.objects.filter(network=network).count()
        assert 0 < stored_at_kill < total, "the kill must land mid-stream"
    finally:
        if first.poll() is None:
            first.kill()
    second = start_streams(kafka_cluster, log)
    try:
        deadline = time.monotonic() + 150
        while Alert.objects.filter(network=network).count() < total:
            assert second.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, (stored_at_kill, Alert.objects.filter(network=network).count(),
                                                 log.read_text()[-1500:])
            time.sleep(0.2)
        time.sleep(2)  # anything replayed twice would show up now
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    alerts = Alert.objects.filter(network=network)
    assert alerts.count() == total
    assert sorted(int(a) for a in alerts.values_list("external_id", flat=True)) == list(range(10_000, 10_000 + total))
    assert alerts.filter(status="matched").count() == total // 2 == Target.objects.filter(network=network).count()
    assert SurveyPhotometry.objects.filter(network=network).count() == (total // 2) * points
    feed = AlertFeed.objects.get(name="ztf-test")
    assert feed.status == "stopped" and feed.lag == 0
    assert "ztf-test [stream ztf]" in log.read_text()
