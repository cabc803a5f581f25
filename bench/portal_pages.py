"""Portal pages on a big network: server time per page against the previous implementations.

Builds a throwaway database migrated like production (DATABASE_URL; PostgreSQL for the real
figure) holding 10,000 targets, 100,000 observations (20,000 on one target) and 5,000 frames
(tests/portal/factories.build_big_world), then times each page through Django's test client
(median of ``--repeats``; "cold" clears the cache first) with its query count. The peers are
the implementations the portal had before (copies kept here): the light curve binned in
Python over every row, and the data-quality summary decoding each frame's JSON in Python.
Goal: the dashboard and the 20,000-point light curve under 300 ms each.

    python bench/portal_pages.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
os.environ["DEBUG"] = "0"  # as deployed (with DEBUG on, Django keeps every SQL statement)

from bench._common import compare, header  # noqa: E402

GOAL_MS = 300.0


def previous_light_curve(target, max_points: int, instrumental: bool) -> dict[str, list[dict]]:
    """The selector before: every row into Python, binned with a boolean mask per bin."""
    import numpy as np
    from astropy.time import Time
    from django.db.models import Q

    from observations.models import Observation

    rows = Observation.objects.filter(target=target, magnitude__isnull=False)
    is_instrumental = Q(photometry_method="instrumental")
    rows = rows.filter(is_instrumental) if instrumental else rows.exclude(is_instrumental)
    by_filter: dict[str, list[tuple]] = {}
    for row in rows.order_by("filter", "observed_at").values_list(
            "filter", "observed_at", "magnitude", "magnitude_error", "site_id", "airmass"):
        by_filter.setdefault(row[0], []).append(row[1:])
    curves = {}
    for name, series in by_filter.items():
        mjd = Time([s[0] for s in series]).mjd
        if len(series) <= max_points:
            curves[name] = [{"t": s[0], "mjd": m, "magnitude": s[1], "error": s[2]} for s, m in zip(series, mjd, strict=True)]
            continue
        mags = np.array([s[1] for s in series], dtype=float)
        errs = np.array([np.nan if s[2] is None else s[2] for s in series], dtype=float)
        edges = np.linspace(mjd[0], mjd[-1], max_points + 1)
        bins = np.clip(np.searchsorted(edges, mjd, side="right") - 1, 0, max_points - 1)
        points = []
        for b in np.unique(bins):
            inside = bins == b
            w = 1 / errs[inside] ** 2
            points.append({"mjd": float(np.mean(mjd[inside])), "magnitude": float(np.sum(w * mags[inside]) / np.sum(w)),
                           "error": float(np.sqrt(1 / np.sum(w))), "n": int(inside.sum())})
        curves[name] = points
    return curves


def previous_quality_summary(frames, days: int = 7) -> dict:
    """The quality summary before: the same counts, with flags and zero point decoded per row in Python."""
    from django.db.models import Count, Q
    from django.utils import timezone

    recent = frames.filter(uploaded_at__gte=timezone.now() - timedelta(days=days))
    counts = recent.aggregate(n_accepted=Count("id", filter=Q(accepted=True)), n_total=Count("id"),
                              n_rejected=Count("id", filter=Q(accepted=False)),
                              n_failed=Count("id", filter=Q(state="failed")))
    counts["backlog"] = frames.exclude(state__in=["done", "failed"]).count()
    reasons: Counter[str] = Counter()
    nights: dict = defaultdict(lambda: {"fwhm": [], "zp": []})
    for site, at, accepted, flags, fwhm, zp in (
            recent.filter(image_type="light", observed_at__isnull=False).order_by("-observed_at")
            .values_list("site__name", "observed_at", "accepted", "quality_flags", "fwhm_arcsec",
                         "photometry__zero_point")[:20_000]):
        if accepted is False:
            reasons.update(flags or ["no reason recorded"])
        night = nights[(at.date().isoformat(), site)]
        if fwhm is not None:
            night["fwhm"].append(fwhm)
        if isinstance(zp, (int, float)):
            night["zp"].append(float(zp))
    per_night = {k: (statistics.median(v["fwhm"]) if v["fwhm"] else None,
                     statistics.median(v["zp"]) if v["zp"] else None) for k, v in nights.items()}
    failures = list(frames.filter(state="failed").order_by("-state_changed_at")
                    .values("id", "original_name", "state_reason", "state_changed_at")[:5])
    return {**counts, "reasons": reasons.most_common(8), "per_night": per_night, "failures": failures}


def run(repeats: int) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.core.cache import cache
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from observations.frames import Frame
    from observations.selectors import light_curve
    from portal.queries import quality_summary
    from tests.portal.factories import build_big_world

    header("portal pages on a big network")
    print(f"   database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}, load {os.getloadavg()[0]:.2f}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        tick = time.perf_counter()
        world = build_big_world(10_000, 100_000, 20_000, 5_000)
        print(f"   loaded 10,000 targets, 100,000 observations, 5,000 frames in {time.perf_counter() - tick:.0f} s")
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")  # fresh statistics, as autovacuum would have them
        client = Client()
        client.force_login(world.a_owner)
        busy = world.a_target

        def page_ms(path: str, cold: bool) -> tuple[float, int]:
            times, count = [], 0
            for _ in range(repeats):
                if cold:
                    cache.clear()
                with CaptureQueriesContext(connection) as queries:
                    start = time.perf_counter()
                    response = client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200, (path, response.status_code)
                count = len(queries)
            return statistics.median(times), count

        def call_ms(function) -> float:
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                function()
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)

        page_ms("/", cold=True)  # sessions, content types, connections
        frame = Frame.objects.filter(network=world.a).order_by("-id").first()
        print(f"\n   {'page':<52} {'cold ms':>8} {'warm ms':>8} {'queries':>8}")
        results = {}
        for path in ["/", "/live/recent", "/targets/", f"/targets/{busy.pk}/", f"/targets/{busy.pk}/lightcurve.json",
                     f"/campaigns/{world.a_campaign.pk}/", f"/sites/{world.a_site.pk}/", "/frames/",
                     f"/frames/{frame.pk}/", "/me/", "/map.json"]:
            cold, count = page_ms(path, cold=True)
            warm, _ = page_ms(path, cold=False)
            results[path] = cold
            print(f"   {path:<52} {cold:8.1f} {warm:8.1f} {count:8d}")
        print()
        ours = call_ms(lambda: light_curve(busy, max_points=1500, instrumental=False))
        peer = call_ms(lambda: previous_light_curve(busy, 1500, False))
        compare("light curve selector, 20,000 points", ours / 1000, peer / 1000, "previous (Python bins)")
        frames = Frame.objects.filter(network=world.a)
        ours = call_ms(lambda: quality_summary(frames))
        peer = call_ms(lambda: previous_quality_summary(frames))
        compare("quality summary, one network", ours / 1000, peer / 1000, "previous (JSON per row)")
        for path in ("/", f"/targets/{busy.pk}/lightcurve.json"):
            verdict = "met" if results[path] < GOAL_MS else "NOT met"
            print(f"   goal < {GOAL_MS:.0f} ms cold for {path}: {verdict} ({results[path]:.0f} ms)")
        print(f"   load average after: {os.getloadavg()[0]:.2f} ({datetime.now(UTC):%H:%M} UTC)")
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="requests per page (median)")
    run(parser.parse_args().repeats)


if __name__ == "__main__":
    main()
