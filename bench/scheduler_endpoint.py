"""The agent endpoint with 100,000 targets: the scheduler's cached list versus ranking per request.

Part of bench/scheduler.py (``--part endpoint``). Builds a throwaway database migrated like
production (DATABASE_URL; PostgreSQL for the real figure), 1,000 sites and 100,000 targets,
runs one scheduler pass from the database into the cache (REDIS_URL: Redis), then times
``GET /api/v1/targets?count=20`` and ``GET /api/v1/targets/last_changed`` as an agent
(median of many). The baseline is the spine's placeholder ranking, which ranked the whole
network inside each request (a copy is kept here). Goal: endpoint median < 5 ms.
"""
from __future__ import annotations

import os
import statistics
import time

import numpy as np

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")
# The bench fires hundreds of requests in seconds; the production throttle would answer 429.
os.environ["DATAS_AGENT_THROTTLE_RATE"] = "1000000/minute"
# As deployed: DEBUG off (with it on, Django keeps every SQL statement of every request).
os.environ["DEBUG"] = "0"


def placeholder_ranking(site, count: int) -> list:
    """The spine's placeholder (scheduling/ranking.py before the scheduler): rank every target per request."""
    from django.db.models import Max, Q
    from django.utils import timezone

    from targets.models import Target

    now = timezone.now()
    targets = (Target.objects.filter(network_id=site.network_id, is_active=True)
               .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
               .annotate(campaign_boost=Max("campaign_memberships__campaign__priority_boost",
                                            filter=Q(campaign_memberships__campaign__is_active=True))))
    ranked = []
    for target in targets:
        if 90.0 - abs(site.latitude - target.dec_deg) < site.min_altitude_deg:
            continue
        hours = (now - target.last_observed_at).total_seconds() / 3600 if target.last_observed_at else None
        staleness = 3.0 if hours is None else min(3.0, hours / (target.cadence_hours or 24.0))
        ranked.append((target.priority + (target.campaign_boost or 0.0) + staleness, target.name, target))
    ranked.sort(key=lambda r: (-r[0], r[1]))
    return ranked[:count]


def fill(network, n_sites: int, n_targets: int, rng: np.random.Generator):
    """Sites from the pure bench's generator, targets inserted in SQL (random, seeded)."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone
    from scheduler import make_sites  # bench/scheduler.py

    from sites.models import Site

    owner = get_user_model().objects.create_user("bench-owner")
    now = timezone.now()
    sites = []
    for spec in make_sites(n_sites, rng):
        horizon = [[a, h] for a, h in zip(spec.horizon.azimuth_deg, spec.horizon.altitude_deg, strict=True)] \
            if spec.horizon else []
        sites.append(Site(network=network, owner=owner, name=spec.name, latitude=spec.latitude_deg,
                          longitude=spec.longitude_deg, elevation_m=spec.elevation_m, filters=list(spec.filters),
                          fov_arcmin=spec.fov_arcmin, limiting_mag=spec.limiting_mag,
                          min_altitude_deg=spec.min_altitude_deg, horizon=horizon,
                          ha_limit_east_h=spec.ha_limits_hours[0] if spec.ha_limits_hours else None,
                          ha_limit_west_h=spec.ha_limits_hours[1] if spec.ha_limits_hours else None,
                          weather_status=spec.weather, weather_reported_at=now, reliability=spec.reliability))
    Site.objects.bulk_create(sites)
    with connection.cursor() as cursor:
        cursor.execute("SELECT setseed(0.20260320)")
        cursor.execute(
            """
            INSERT INTO targets_target (network_id, name, name_key, ra_deg, dec_deg, target_type, magnitude,
                priority, cadence_hours, min_observations, required_filters, exposure_sec, time_windows,
                is_active, metadata, total_observations, unique_sites, observations_last_7d, last_observed_at,
                created_at, updated_at)
            SELECT %s, 'T' || i, 't' || i, random() * 359.999, degrees(asin(2 * random() - 1)), 'variable',
                6 + random() * 12, 1 + floor(random() * 10), (ARRAY[6, 24, 72, NULL])[1 + floor(random() * 4)],
                floor(random() * 50), (ARRAY['["V"]', '["B", "V"]', '["R"]', '["L"]', '[]'])[1 + floor(random() * 5)]::jsonb,
                (ARRAY[30, 60, 120, 300])[1 + floor(random() * 4)], '[]', true, '{}', floor(random() * 40), 0, 0,
                now() - random() * interval '10 days', now(), now()
            FROM generate_series(1, %s) AS i
            """,
            [network.pk, n_targets],
        )
        cursor.execute("ANALYZE targets_target")


def run(n_sites: int, n_targets: int, repeats: int) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from network.models import Network
    from scheduling.passes import cached_list, run_network_pass
    from sites.services import issue_site_key

    print(f"\nagent endpoint: database {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]}, "
          f"cache {settings.CACHES['default']['BACKEND'].rsplit('.', 1)[-1]}")
    connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        from django.core.cache import cache
        cache.clear()
        network = Network.objects.create(name="Bench", slug="bench")
        tick = time.perf_counter()
        fill(network, n_sites, n_targets, np.random.default_rng(20260320))
        print(f"  loaded {n_sites:,} sites and {n_targets:,} targets in {time.perf_counter() - tick:.1f} s")
        tick = time.perf_counter()
        result = run_network_pass(network)
        pass_s = time.perf_counter() - tick
        print(f"  scheduler pass from the database into the cache: {pass_s:.2f} s "
              f"(scheduling {result.stats['total_s']:.2f} s)")
        busy = max(result.sites.values(), key=lambda s: len(s.entries))
        site = network.sites.get(pk=busy.site_id)
        client = Client(HTTP_AUTHORIZATION=f"Bearer {issue_site_key(site).plaintext}")
        assert cached_list(site.pk)["entries"], "the chosen site should have a list"

        def median_ms(path: str, params: dict, n: int) -> float:
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                response = client.get(path, params)
                times.append((time.perf_counter() - t0) * 1000)
                assert response.status_code == 200, response.content[:300]
            return statistics.median(times)

        median_ms("/api/v1/targets", {"count": 20}, 5)  # warm connections and caches
        endpoint = median_ms("/api/v1/targets", {"count": 20}, repeats)
        state = median_ms("/api/v1/targets/last_changed", {}, repeats)
        baseline = []
        for _ in range(3):
            t0 = time.perf_counter()
            placeholder_ranking(site, 20)
            baseline.append((time.perf_counter() - t0) * 1000)
        base = statistics.median(baseline)
        print(f"  GET /api/v1/targets?count=20 (cached list): median {endpoint:.2f} ms over {repeats} "
              f"(goal < 5 ms: {'met' if endpoint < 5 else 'NOT met'})")
        print(f"  GET /api/v1/targets/last_changed: median {state:.2f} ms")
        print(f"  baseline, the spine's placeholder ranking per request: median {base:.0f} ms (3 runs)")
        print(f"  ratio: {base / endpoint:,.0f}x")
    finally:
        connection.creation.destroy_test_db(connection.settings_dict["NAME"], verbosity=0)
