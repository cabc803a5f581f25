"""``manage.py find_movers --network SLUG --target NAME (--night YYYY-MM-DD | --frames ID...)``."""
from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from network.models import Network
from observations.movers import MoverSearchError, search_movers
from targets.selectors import find_target_by_name


class Command(BaseCommand):
    help = "Search a night's frames of a target for moving objects and store the candidates and report."

    def add_arguments(self, parser):
        parser.add_argument("--network", required=True, help="Network slug")
        parser.add_argument("--target", required=True, help="Target name or alias")
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--night", help="Night as YYYY-MM-DD (its evening; noon to noon UTC)")
        which.add_argument("--frames", nargs="+", type=int, metavar="ID", help="Exactly these frame ids")

    def handle(self, *args, network: str, target: str, night: str | None, frames: list[int] | None, **options):
        found = Network.objects.filter(slug=network).first()
        if found is None:
            raise CommandError(f"no network with slug {network!r}")
        row = find_target_by_name(found, target)
        if row is None:
            raise CommandError(f"no target {target!r} in network {network!r}")
        try:
            day = date.fromisoformat(night) if night else None
        except ValueError:
            raise CommandError(f"--night {night!r} is not a date YYYY-MM-DD") from None
        try:
            outcome = search_movers(found.pk, row.pk, day, frames)
        except MoverSearchError as exc:
            raise CommandError(str(exc)) from None
        search = outcome.search
        self.stdout.write(f"{row.name}, night of {search.night}: {outcome.movers} mover(s), {outcome.streaks} "
                          f"streak(s) in {search.frames.count()} frames; report {search.report_key}")
        for candidate in search.candidates.all():
            rate = f"{candidate.rate_px_per_frame:.3f}" if candidate.rate_px_per_frame is not None else "-"
            self.stdout.write(f"  {candidate.number}  {candidate.kind:6}  rate {rate} px/frame  "
                              f"angle {candidate.angle_deg:.1f} deg  SNR {candidate.snr:.1f}  "
                              f"{len(candidate.positions)} positions")
