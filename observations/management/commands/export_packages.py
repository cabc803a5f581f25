"""``manage.py export_packages --network SLUG --out DIR``: one ready-to-process folder per pointing."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_date, parse_datetime

from network.models import Network
from observations.archive.clusters import ArchiveQueryError, archive_lights, cluster_lights
from observations.archive.packages import PackageError, write_package
from targets.sky import InvalidSkyPosition, check_position


def parse_when(text: str | None, option: str) -> dt.datetime | None:
    """A date or an ISO 8601 time (UTC when no zone is given)."""
    if not text:
        return None
    when = parse_datetime(text)
    if when is None:
        day = parse_date(text)
        if day is None:
            raise CommandError(f"{option} {text!r} is not a date (YYYY-MM-DD) or an ISO 8601 time")
        when = dt.datetime.combine(day, dt.time())
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class Command(BaseCommand):
    help = ("Cluster the network's lights into pointings (mosaic panels apart, dithers together) and write one "
            "folder per pointing: lights by filter, their calibration, manifest.json/.csv and a Siril script.")

    def add_arguments(self, parser):
        parser.add_argument("--network", required=True, help="network slug")
        parser.add_argument("--out", required=True, help="folder to write the packages into")
        parser.add_argument("--near", nargs=3, type=float, metavar=("RA", "DEC", "RADIUS"),
                            help="only lights within RADIUS degrees of (RA, DEC), degrees")
        parser.add_argument("--target", help="only lights around this target of the network (name or alias)")
        parser.add_argument("--since", help="only lights taken from this date or time (UTC)")
        parser.add_argument("--until", help="only lights taken before this date or time (UTC)")
        parser.add_argument("--preview", action="store_true",
                            help="also a stacked (uncalibrated) preview PNG per filter in each package")
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--link", dest="mode", action="store_const", const="link",
                          help="symbolic links to the share (default)")
        mode.add_argument("--copy", dest="mode", action="store_const", const="copy", help="copy the files")

    def handle(self, *args, network, out, near, target, since, until, mode, preview, **options):
        tenant = Network.objects.filter(slug=network).first()
        if tenant is None:
            raise CommandError(f"no network with slug {network!r}")
        try:
            if near is not None:
                check_position(near[0], near[1], near[2])
            frames = archive_lights(tenant, near=tuple(near) if near else None, target=target,
                                    since=parse_when(since, "--since"), until=parse_when(until, "--until"))
            clusters = cluster_lights(tenant, frames)
        except (ArchiveQueryError, InvalidSkyPosition) as exc:
            raise CommandError(str(exc)) from None
        if not clusters:
            raise CommandError("no catalogued lights with a sky position match the query")
        root = Path(out).expanduser().resolve()
        root.mkdir(parents=True, exist_ok=True)
        for cluster in clusters:
            try:
                package = write_package(cluster, root, mode or "link", preview=preview)
            except (PackageError, OSError) as exc:
                raise CommandError(f"package {cluster.name}: {exc}") from None
            self.stdout.write(f"{package.folder.name}: {package.lights} light(s) ({', '.join(cluster.filters)}), "
                              f"{package.calibration_files} calibration file(s)"
                              + (f", {package.left_out} rejected left out" if package.left_out else ""))
            for line in package.missing[:5]:
                self.stdout.write(self.style.WARNING(f"  no match: {line}"))
        self.stdout.write(self.style.SUCCESS(f"{len(clusters)} package(s) in {root}"))
