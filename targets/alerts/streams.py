"""Kafka alert streams: one supervised consumer thread per stream, at-least-once with dedupe.

A batch of messages is parsed, ingested in one database transaction, and only then are the
consumer group's offsets committed. A crash before the commit replays the batch; the alerts
it had stored are known by (network, source, external id) and skipped, so nothing is lost
or stored twice. Bad packets are logged with their reason and skipped.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from django.conf import settings
from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from targets.alerts.ingest import ingest_everywhere
from targets.alerts.models import AlertFeed
from targets.alerts.registry import UnknownSource, source_for, source_named
from targets.alerts.sources.base import BadPacket, ParsedAlert, SkippedPacket

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
LAG_EVERY_S = 10.0


class StreamConfigError(ValueError):
    """A stream entry in DATAS_ALERT_STREAMS that cannot be used."""


@dataclass(frozen=True)
class StreamConfig:
    """One Kafka stream: where it is, which source reads it, and which networks may receive it."""

    name: str
    topics: tuple[str, ...]
    bootstrap_servers: str
    group_id: str
    source: str = ""
    batch_size: int = 500
    poll_timeout_s: float = 1.0
    networks: tuple[str, ...] = ()
    config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_setting(cls, entry: dict) -> StreamConfig:
        try:
            stream = cls(name=str(entry["name"]), topics=tuple(entry["topics"]),
                         bootstrap_servers=str(entry["bootstrap_servers"]),
                         group_id=str(entry.get("group_id") or f"datas-{entry['name']}"),
                         source=str(entry.get("source", "")), batch_size=int(entry.get("batch_size", 500)),
                         poll_timeout_s=float(entry.get("poll_timeout_s", 1.0)),
                         networks=tuple(entry.get("networks", ())), config=dict(entry.get("config", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise StreamConfigError(f"alert stream {entry!r}: {exc!r} (needs name, topics, bootstrap_servers)") from exc
        if stream.source:
            try:
                source_named(stream.source)
            except UnknownSource as exc:
                raise StreamConfigError(f"alert stream {stream.name!r}: {exc}") from exc
        return stream


def configured_streams() -> list[StreamConfig]:
    return [StreamConfig.from_setting(entry) for entry in settings.DATAS_ALERT_STREAMS]


def parse_message(value: bytes | None, stream: StreamConfig) -> list[ParsedAlert]:
    """The alerts in one message; raises `BadPacket` / `SkippedPacket` for packets to skip."""
    if not value:
        raise BadPacket("empty message")
    if len(value) > settings.DATAS_ALERT_MAX_BYTES:
        raise BadPacket(f"{len(value)} bytes is more than the {settings.DATAS_ALERT_MAX_BYTES} allowed")
    try:
        reader = source_named(stream.source) if stream.source else source_for(value)
    except UnknownSource as exc:
        raise BadPacket(str(exc)) from exc
    return reader.parse(value)


class StreamConsumer:
    """Reads one stream in batches: parse, ingest (one transaction), then commit the offsets."""

    def __init__(self, stream: StreamConfig) -> None:
        self.stream = stream
        options = {"bootstrap.servers": stream.bootstrap_servers, "group.id": stream.group_id,
                   "enable.auto.commit": False, "auto.offset.reset": "earliest",
                   "enable.partition.eof": False} | stream.config
        self.consumer = Consumer(options)
        self.consumer.subscribe(list(stream.topics))
        self.last_lag_at = 0.0
        feed, _ = AlertFeed.objects.get_or_create(name=stream.name, defaults={"kind": "stream",
                                                                              "source": stream.source or "sniffed"})
        self.feed_id = feed.pk

    def close(self) -> None:
        self.consumer.close()

    def lag(self) -> int | None:
        total = 0
        try:
            for part in self.consumer.assignment():
                low, high = self.consumer.get_watermark_offsets(part, timeout=2.0, cached=False)
                position = self.consumer.position([TopicPartition(part.topic, part.partition)])[0].offset
                total += high - (position if position >= 0 else low)
        except KafkaException:
            return None
        return total

    def run_batch(self) -> int:
        """Consume, ingest and commit one batch; returns the number of messages read."""
        messages = self.consumer.consume(self.stream.batch_size, self.stream.poll_timeout_s)
        alerts, skipped, errors = [], 0, []
        for message in messages:
            if message.error():
                if message.error().fatal():
                    raise KafkaException(message.error())
                log.warning("stream %s: %s", self.stream.name, message.error())
                continue
            try:
                alerts += parse_message(message.value(), self.stream)
            except (BadPacket, SkippedPacket) as exc:
                skipped += 1
                where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                errors.append(f"{where}: {exc}")
                log.warning("stream %s: skipped %s: %s", self.stream.name, where, exc)
        if alerts:
            ingest_everywhere(alerts, self.stream.networks or None)
        if any(message.error() is None for message in messages):
            try:
                self.consumer.commit(asynchronous=False)  # only after the database commit above
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError._NO_OFFSET:  # nothing new to commit is fine
                    raise
        now = time.monotonic()
        updates: dict[str, Any] = {"status": "running"}
        if messages:
            updates.update(messages=F("messages") + len(messages), alerts=F("alerts") + len(alerts),
                           skipped=F("skipped") + skipped, last_message_at=timezone.now())
        if errors:
            updates["last_error"] = errors[-1][:2000]
        if now - self.last_lag_at > LAG_EVERY_S or (messages and len(messages) < self.stream.batch_size):
            updates["lag"], self.last_lag_at = self.lag(), now
        AlertFeed.objects.filter(pk=self.feed_id).update(**updates)
        return len(messages)


class StreamSupervisor(threading.Thread):
    """Runs one stream for ever: a failure is logged, and the consumer restarts with backoff."""

    def __init__(self, stream: StreamConfig, stop: threading.Event) -> None:
        super().__init__(name=f"alert-stream-{stream.name}", daemon=True)
        self.stream, self.stop = stream, stop

    def run(self) -> None:
        failures = 0
        while not self.stop.is_set():
            consumer = None
            try:
                consumer = StreamConsumer(self.stream)
                while not self.stop.is_set():
                    close_old_connections()
                    consumer.run_batch()
                    failures = 0
            except Exception as exc:  # any failure restarts this stream only, after a pause
                failures += 1
                backoff = min(MAX_BACKOFF_S, 2.0 ** (failures - 1))
                log.exception("stream %s failed (%s); restarting in %.0f s", self.stream.name, exc, backoff)
                AlertFeed.objects.filter(name=self.stream.name).update(
                    status="restarting", restarts=F("restarts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000])
                self.stop.wait(backoff)
            finally:
                if consumer is not None:
                    try:
                        consumer.close()
                    except Exception:  # closing a broken consumer may fail too; the next one starts clean
                        log.debug("closing the consumer of %s failed", self.stream.name, exc_info=True)
        AlertFeed.objects.filter(name=self.stream.name).update(status="stopped")
        connection.close()


def health_lines(names: list[str] | None = None) -> list[str]:
    feeds = AlertFeed.objects.all()
    if names:
        feeds = feeds.filter(name__in=names)
    return [feed.health_line() for feed in feeds]
