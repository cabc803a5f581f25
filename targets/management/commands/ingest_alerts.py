"""``manage.py ingest_alerts FILE... --network SLUG``: one-shot ingest of alert files, in order."""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from network.models import Network
from targets.alerts.ingest import IngestReport, ingest_batch
from targets.alerts.registry import UnknownSource, source_for, source_named
from targets.alerts.sources.base import BadPacket, SkippedPacket


class Command(BaseCommand):
    help = ("Ingest alert files (ZTF .avro, GCN .json, VOEvent .xml, Gaia/TNS .csv, TNS JSON; the format is "
            "told by content) into one network, in the order given. Known alerts are skipped.")

    def add_arguments(self, parser) -> None:
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--network", required=True, help="Slug of the network the alerts are for.")
        parser.add_argument("--source", help="Read every file as this source (registry name) instead of sniffing.")

    def handle(self, *args, files: list[Path], network: str, source: str | None, **options) -> None:
        target_network = Network.objects.filter(slug=network).first()
        if target_network is None:
            raise CommandError(f"no network with slug {network!r}")
        try:
            forced = source_named(source) if source else None
        except UnknownSource as exc:
            raise CommandError(str(exc)) from exc
        limit = settings.DATAS_ALERT_MAX_BYTES * 64
        failures, pending, total = [], [], IngestReport()
        for path in tqdm(files, unit="file", disable=len(files) < 20 or options["verbosity"] < 1):
            try:
                if path.stat().st_size > limit:
                    raise BadPacket(f"{path.stat().st_size} bytes is more than the {limit} allowed")
                data = path.read_bytes()
                reader = forced or source_for(data)
                alerts = reader.parse(data)
            except SkippedPacket as exc:
                self.stdout.write(f"{path}: skipped: {exc}")
                continue
            except (OSError, BadPacket, UnknownSource) as exc:
                failures.append(f"{path}: {exc}")
                self.stderr.write(f"{path}: {exc}")
                continue
            self.stdout.write(f"{path}: {len(alerts)} {reader.name} alert(s)")
            pending += alerts
            if len(pending) >= settings.DATAS_ALERT_BATCH_SIZE:
                total.add(ingest_batch(target_network, pending))
                pending = []
        if pending:
            total.add(ingest_batch(target_network, pending))
        self.stdout.write(f"{total.received} received, {total.duplicates} already known, {total.matched} matched, "
                          f"{total.ignored} ignored, {total.retracted} retracted; {total.targets_touched} target(s) "
                          f"made or changed ({total.tiles} tiles), {total.photometry} survey point(s)")
        if failures:
            raise CommandError(f"{len(failures)} of {len(files)} file(s) could not be read (see above)")

