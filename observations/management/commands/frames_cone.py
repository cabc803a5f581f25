"""``manage.py frames_cone RA DEC RADIUS``: frames whose centre lies in a cone, nearest first."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from network.models import Network
from observations.frame_selectors import frames_in_cone, frames_of_networks
from targets.sky import InvalidSkyPosition


class Command(BaseCommand):
    help = "List frames whose WCS centre lies within RADIUS degrees of (RA, Dec), nearest first."

    def add_arguments(self, parser):
        parser.add_argument("ra", type=float, help="Cone centre, right ascension in degrees")
        parser.add_argument("dec", type=float, help="Cone centre, declination in degrees")
        parser.add_argument("radius", type=float, help="Cone radius in degrees")
        parser.add_argument("--network", help="Only this network (slug); default every network")
        parser.add_argument("--limit", type=int, default=100, help="At most this many frames (default 100)")
        parser.add_argument("--json", dest="as_json", action="store_true", help="One JSON object per line instead of a table")

    def handle(self, *args, ra: float, dec: float, radius: float, network: str | None, limit: int,
               as_json: bool, **options):
        networks = Network.objects.all()
        if network:
            networks = networks.filter(slug=network)
            if not networks.exists():
                raise CommandError(f"no network with slug {network!r}")
        try:
            frames = list(frames_in_cone(frames_of_networks(networks), ra, dec, radius)[:max(limit, 1)])
        except InvalidSkyPosition as exc:
            raise CommandError(str(exc)) from None
        if as_json:
            for frame in frames:
                self.stdout.write(_json_line(frame))
            return
        self.stdout.write(f"{len(frames)} frame(s) within {radius:g} deg of ({ra:g}, {dec:g})")
        if frames:
            self.stdout.write(f"{'id':>7}  {'sep_deg':>8}  {'ra_deg':>10}  {'dec_deg':>9}  {'observed_at (UTC)':19}  "
                              f"{'filter':6}  {'state':19}  name")
        for frame in frames:
            when = frame.observed_at.strftime("%Y-%m-%d %H:%M:%S") if frame.observed_at else "-"
            self.stdout.write(f"{frame.pk:>7}  {frame.separation_deg:8.4f}  {frame.ra_deg:10.5f}  {frame.dec_deg:9.5f}  "
                              f"{when:19}  {frame.filter or '-':6}  {frame.state:19}  {frame.original_name}")


def _json_line(frame) -> str:
    return json.dumps({"id": frame.pk, "network": frame.network.slug, "separation_deg": frame.separation_deg,
                       "ra_deg": frame.ra_deg, "dec_deg": frame.dec_deg, "observed_at":
                       frame.observed_at.isoformat() if frame.observed_at else None, "filter": frame.filter,
                       "state": frame.state, "name": frame.original_name, "sha256": frame.sha256})
