"""``manage.py catalogue PATH... --network SLUG``: catalogue a share of FITS files in place."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from observations.archive.catalogue import (
    CatalogueError,
    CatalogueSummary,
    archive_network,
    archive_site,
    catalogue_paths,
)


class Command(BaseCommand):
    help = ("Walk folders of FITS files (.fits .fit .fts .fz .fits.gz), catalogue every frame where it lies as a "
            "frame of the network, give lights a sky position and calibration.")

    def add_arguments(self, parser):
        parser.add_argument("paths", nargs="+", help="files or folders, walked recursively")
        parser.add_argument("--network", required=True, help="network slug (created as a personal network if missing)")
        parser.add_argument("--site", help="site name (default: the network's only site, else one is created)")
        parser.add_argument("--solve", choices=("never", "missing", "always"), default="missing",
                            help="plate solve lights: never, those without a usable header WCS (default), always")
        parser.add_argument("--no-grade", action="store_true", help="do not grade the lights whose pixels are read")
        parser.add_argument("--watch", action="store_true", help="then follow the folders for new files")
        parser.add_argument("--quiet-seconds", type=float, default=10.0,
                            help="with --watch: a file is read once untouched this long (default 10)")

    def handle(self, *args, paths, network, site, solve, no_grade, watch, quiet_seconds, **options):
        try:
            tenant = archive_network(network)
            place = archive_site(tenant, site) if site else None
            self._run(paths, tenant, place, solve, not no_grade)
        except CatalogueError as exc:
            raise CommandError(str(exc)) from None
        if watch:
            from observations.archive.watch import watch_share

            roots = [Path(p).expanduser().resolve() for p in paths]
            self.stdout.write(f"watching {', '.join(map(str, roots))} (quiet period {quiet_seconds:g} s); Ctrl-C stops")
            try:
                watch_share(roots, lambda ready: self._arrived(ready, tenant, place, solve, not no_grade),
                            quiet_s=quiet_seconds)
            except KeyboardInterrupt:
                self.stdout.write("stopped watching")

    def _arrived(self, paths, tenant, place, solve, grade) -> None:
        """Files the watcher found quiet; one that vanished meanwhile is simply not there."""
        present = [p for p in paths if p.is_file()]
        if not present:
            return
        try:
            self._run(present, tenant, place, solve, grade)
        except CatalogueError as exc:
            self.stdout.write(self.style.WARNING(f"  {exc}"))

    def _run(self, paths, tenant, place, solve, grade) -> CatalogueSummary:
        bar = tqdm(total=0, unit="file", desc="catalogue", file=self.stderr._out, leave=False, mininterval=0.5)

        def progress(done: int, total: int, path: Path) -> None:
            if bar.total != total:
                bar.total = total
                bar.refresh()
            bar.update(done - bar.n)

        try:
            summary = catalogue_paths(paths, tenant, place, solve=solve, progress=progress, grade=grade)
        finally:
            bar.close()
        self._report(summary)
        return summary

    def _report(self, s: CatalogueSummary) -> None:
        kinds = ", ".join(f"{n} {k}" for k, n in sorted(s.kinds.items())) or "none"
        self.stdout.write(self.style.SUCCESS(
            f"{s.files} file(s) in {s.seconds:.1f} s ({s.files_per_s:.0f} files/s): {s.new} new ({kinds}), "
            f"{s.unchanged} unchanged, {len(s.moved)} moved, {len(s.copies)} copies, {len(s.replaced)} overwritten, "
            f"{len(s.bad)} bad"))
        if s.astrometry:
            self.stdout.write("astrometry of new lights: " + ", ".join(f"{n} {m}" for m, n in s.astrometry.items()))
        for old, new in s.moved:
            self.stdout.write(f"  moved: {old} -> {new}")
        for path, other in s.copies:
            self.stdout.write(f"  copy: {path} (same bytes as {other})")
        for path, reason in s.bad:
            self.stdout.write(self.style.WARNING(f"  skipped {path}: {reason}"))
