"""``manage.py schedule --site X``: a site's ranked list, for a human; ``--all`` runs every network."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from scheduling.passes import cached_list, run_all_passes, run_network_pass
from scheduling.ranking import explain
from sites.models import Site


def find_site(ident: str, network_slug: str | None = None) -> Site:
    """A site by id or by name (case-insensitive); ``network_slug`` settles a shared name."""
    sites = Site.objects.select_related("network")
    if network_slug:
        sites = sites.filter(network__slug=network_slug)
    matches = list(sites.filter(pk=int(ident))) if ident.isdigit() else list(sites.filter(name__iexact=ident))
    if not matches:
        raise CommandError(f"no site {ident!r}" + (f" in network {network_slug!r}" if network_slug else ""))
    if len(matches) > 1:
        networks = ", ".join(sorted(s.network.slug for s in matches))
        raise CommandError(f"{len(matches)} sites are called {ident!r} (networks: {networks}); add --network")
    return matches[0]


def hhmm(iso: str | None) -> str:
    return iso[11:16] if iso else "--:--"


class Command(BaseCommand):
    help = "Print a site's ranked list (running its network's scheduler pass first, unless --cached)."

    def add_arguments(self, parser):
        parser.add_argument("--site", help="site id or name")
        parser.add_argument("--network", help="network slug, when several sites share the name")
        parser.add_argument("--count", type=int, default=20, help="entries to show (default 20)")
        parser.add_argument("--cached", action="store_true", help="show the cached list, do not run a pass")
        parser.add_argument("--json", action="store_true", help="print the list as JSON")
        parser.add_argument("--all", action="store_true", help="run a pass for every active network and summarise")

    def handle(self, *args, **options):
        if options["all"]:
            for slug, stats in run_all_passes().items():
                self.stdout.write(f"{slug}: {stats['total_s']:.2f} s, {int(stats['pairs_refined'])} pairs checked")
            return
        if not options["site"]:
            raise CommandError("give --site (id or name), or --all")
        if options["count"] < 1:
            raise CommandError("--count must be at least 1")
        site = find_site(options["site"], options["network"])
        if not options["cached"]:
            run_network_pass(site.network_id)
        payload = cached_list(site.pk)
        if payload is None:
            raise CommandError(f"no list cached for {site.name} yet; run without --cached")
        if options["json"]:
            self.stdout.write(json.dumps(payload, indent=2))
            return
        night = payload.get("night") or [None, None]
        self.stdout.write(f"{site.name} ({site.network.slug}), pass at {payload['generated_at']}, "
                          f"valid until {payload['valid_until']}; night {hhmm(night[0])}-{hhmm(night[1])} UTC")
        if not payload["entries"]:
            self.stdout.write(f"Nothing to do: {payload['reason']}")
            return
        self.stdout.write(f"{'#':>3} {'target':<24} {'score':>8} {'window UTC':<11} {'alt':>5} {'X':>5}  "
                          f"{'plan':<28} why")
        for e in payload["entries"][: options["count"]]:
            plan = ", ".join(f"{s['filter']} {s['exposure_sec']:g}s x{s['count']}" for s in e["filter_plan"])
            why = explain(e["terms"])  # the same words the API's ranked list gives
            flag = "!" if e["urgent"] else " "
            self.stdout.write(f"{e['rank']:>3}{flag}{e['target_name'][:24]:<24} {e['score']:>8.3f} "
                              f"{hhmm(e['window_start'])}-{hhmm(e['window_end'])} {e['altitude_deg']:>5.1f} "
                              f"{e['airmass']:>5.2f}  {plan[:28]:<28} {why}")
