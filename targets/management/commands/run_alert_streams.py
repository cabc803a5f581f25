"""``manage.py run_alert_streams``: the long-running Kafka consumers (DATAS_ALERT_STREAMS)."""
from __future__ import annotations

import signal
import threading

from django.core.management.base import BaseCommand, CommandError

from targets.alerts.streams import StreamConfigError, StreamSupervisor, configured_streams, health_lines


class Command(BaseCommand):
    help = ("Consume the alert streams in DATAS_ALERT_STREAMS, one supervised thread each, until SIGTERM/SIGINT. "
            "Offsets are committed only after the alerts are in the database. Prints a health line per stream.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("--health-every", type=float, default=60.0, help="Seconds between health lines.")
        parser.add_argument("--stream", action="append", default=[], help="Only this stream (repeatable).")

    def handle(self, *args, health_every: float, stream: list[str], **options) -> None:
        try:
            streams = configured_streams()
        except StreamConfigError as exc:
            raise CommandError(str(exc)) from exc
        if stream:
            unknown = set(stream) - {s.name for s in streams}
            if unknown:
                raise CommandError(f"no configured stream called {sorted(unknown)}")
            streams = [s for s in streams if s.name in stream]
        if not streams:
            raise CommandError("no alert streams configured: set DATAS_ALERT_STREAMS (a JSON list)")
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        workers = [StreamSupervisor(s, stop) for s in streams]
        for worker in workers:
            worker.start()
        self.stdout.write(f"consuming {', '.join(s.name for s in streams)}", ending="\n")
        self.stdout.flush()
        names = [s.name for s in streams]
        while not stop.wait(health_every):
            for line in health_lines(names):
                self.stdout.write(line)
            self.stdout.flush()
        for worker in workers:
            worker.join(timeout=30)
        for line in health_lines(names):
            self.stdout.write(line)
