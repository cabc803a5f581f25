"""``manage.py archive_tasking --network SLUG --goals targets.csv --out DIR``: coverage of a target
list by the archive, and KStars/Ekos (or N.I.N.A., CSV) tasking for exactly the gaps."""
from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from network.models import Network
from scheduling.archive_coverage import (
    GoalsError,
    coverage,
    gap_jobs,
    import_goals,
    read_goals_csv,
    stored_goals,
)
from scheduling.exports import TASKING_FORMATS, EkosOptions, TaskingError, tasking_files
from scheduling.exports.nina import load_template
from sites.models import Site


class Command(BaseCommand):
    help = ("Compare a target list with exposure goals per filter (CSV) with the good exposure catalogued per "
            "panel, and write tasking files for the panels and filters short of their goal.")

    def add_arguments(self, parser):
        parser.add_argument("--network", required=True, help="network slug")
        parser.add_argument("--goals", help="CSV: name, ra, dec, filter, exposure_s, goal_hours [, radius_deg, "
                                            "priority]; default: the goals imported before")
        parser.add_argument("--import", dest="store", action="store_true",
                            help="store the CSV's targets and goals in the network (used when --goals is left out)")
        parser.add_argument("--out", required=True, help="folder to write the tasking files into")
        parser.add_argument("--site", help="only this site's frames; its filter wheel names the filters")
        parser.add_argument("--format", choices=TASKING_FORMATS, default="ekos")
        parser.add_argument("--template", help="N.I.N.A. target or sequence template (.json), for --format nina")
        parser.add_argument("--profile", default="Default", help="Ekos equipment profile")
        parser.add_argument("--sequence-dir", help="absolute folder of the .esq files on the KStars machine "
                                                   "(default: --out, made absolute)")

    def handle(self, *args, network, goals, store, out, site, format, template, profile, sequence_dir, **options):
        tenant = Network.objects.filter(slug=network).first()
        if tenant is None:
            raise CommandError(f"no network with slug {network!r}")
        place = None
        if site:
            place = Site.objects.filter(network=tenant, name=site).first()
            if place is None:
                raise CommandError(f"no site {site!r} in network {network!r}")
        if goals:
            try:
                targets = read_goals_csv(Path(goals).read_text(encoding="utf-8"))
            except OSError as exc:
                raise CommandError(f"cannot read {goals}: {exc.strerror or exc}") from None
            except GoalsError as exc:
                raise CommandError(f"{goals}: {exc}") from None
            if store:
                created, updated = import_goals(tenant, targets)
                self.stdout.write(f"target list stored: {created} target(s) created, {updated} updated")
        else:
            if store:
                raise CommandError("--import needs --goals (the CSV to import)")
            targets = stored_goals(tenant)
            if not targets:
                raise CommandError(f"network {network!r} has no imported goals: give --goals targets.csv "
                                   f"(with --import to keep them)")
        rows = coverage(tenant, targets, place.pk if place else None)
        self.stdout.write(f"{'panel':28} {'filter':6} {'have_h':>7} {'goal_h':>7} {'frames':>6}  status")
        for row in rows:
            status = f"short {row.missing_s / 3600:.2f} h" if row.short else "done"
            self.stdout.write(f"{row.panel:28} {row.filter:6} {row.have_s / 3600:7.2f} {row.goal_s / 3600:7.2f} "
                              f"{row.frames:6d}  {status}")
        wheel = list(place.filters) if place and place.filters else sorted({r.filter for r in rows})
        jobs, skipped = gap_jobs(rows, wheel, place.min_altitude_deg if place else 30.0)
        for panel, why in skipped:
            self.stdout.write(self.style.WARNING(f"  not tasked: {panel}: {why}"))
        if not jobs:
            self.stdout.write(self.style.SUCCESS("every panel and filter has reached its goal: nothing to task"))
            return
        folder = Path(out).expanduser().resolve()
        try:
            ekos = EkosOptions(sequence_dir=sequence_dir or str(folder), profile=profile, startup="asap")
            files = tasking_files(format, jobs, wheel, ekos_options=ekos,
                                  nina_template=load_template(Path(template)) if template else None)
        except TaskingError as exc:
            raise CommandError(str(exc)) from None
        folder.mkdir(parents=True, exist_ok=True)
        for name in sorted(files, key=lambda n: n.endswith(".esl")):
            (folder / name).write_text(files[name], encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"{len(jobs)} job(s), {len(files)} file(s) in {folder}"))
