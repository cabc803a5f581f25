"""``manage.py export_tasking --site X --format ekos --out DIR``: tonight's tasking files for a site."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.dateparse import parse_datetime

from scheduling.exports import TASKING_FORMATS, EkosOptions, TaskingError
from scheduling.exports.nina import load_template
from scheduling.management.commands.schedule import find_site
from scheduling.tasking import tasking_for_site


class Command(BaseCommand):
    help = "Plan tonight for a site (goals minus what is recorded) and write KStars/Ekos, N.I.N.A. or CSV files."

    def add_arguments(self, parser):
        parser.add_argument("--site", required=True, help="site id or name")
        parser.add_argument("--network", help="network slug, when several sites share the name")
        parser.add_argument("--format", choices=TASKING_FORMATS, default="ekos")
        parser.add_argument("--out", required=True, help="folder to write the files into")
        parser.add_argument("--template", help="N.I.N.A. target or sequence template (.json), for --format nina")
        parser.add_argument("--profile", default="Default", help="Ekos equipment profile")
        parser.add_argument("--sequence-dir", help="absolute folder of the .esq files on the KStars machine "
                                                   "(default: --out, made absolute)")
        parser.add_argument("--when", help="a time in or before the night to plan (ISO 8601, UTC); default now")

    def handle(self, *args, **options):
        site = find_site(options["site"], options["network"])
        out = Path(options["out"]).expanduser().resolve()
        when = None
        if options["when"]:
            when = parse_datetime(options["when"])
            if when is None:
                raise CommandError(f"--when {options['when']!r} is not an ISO 8601 time")
            when = when if when.tzinfo else when.replace(tzinfo=dt.UTC)
        try:
            template = load_template(Path(options["template"])) if options["template"] else None
            ekos = EkosOptions(sequence_dir=options["sequence_dir"] or str(out), profile=options["profile"])
            plan, files = tasking_for_site(site, options["format"], when, ekos_options=ekos, nina_template=template)
        except TaskingError as exc:
            raise CommandError(str(exc)) from exc
        out.mkdir(parents=True, exist_ok=True)
        for name in sorted(files, key=lambda n: n.endswith(".esl")):
            (out / name).write_text(files[name], encoding="utf-8")
        self.stdout.write(self.style.SUCCESS(f"{len(plan.jobs)} job(s) for {site.name}, {len(files)} file(s) in {out}"))
        for job in plan.jobs:
            steps = ", ".join(f"{s.filter} {s.exposure_sec:g}s x{s.count}" for s in job.steps)
            start = dt.datetime.fromtimestamp(job.start, dt.UTC).strftime("%H:%M")
            end = dt.datetime.fromtimestamp(job.end, dt.UTC).strftime("%H:%M")
            self.stdout.write(f"  {start}-{end} UTC  {job.name}: {steps}")
        for name, why in plan.unplanned:
            self.stdout.write(f"  not planned: {name}: {why}")
