"""Cone search on 1,000,000 targets in PostgreSQL: Q3C index versus a full scan.

Builds a throwaway database (migrated like production), fills ``targets_target`` with one
million positions uniform on the sphere, and times ``targets.sky.cone_search`` (1 degree
radius, through the ORM, end to end) twice: as deployed (Q3C index) and with index and
bitmap scans disabled so PostgreSQL must scan the table (the peer/baseline: the same query
with no spatial index). Prints both medians and the ratio. The goal: Q3C median < 5 ms and
at least 500x faster than the scan.

Run: DATABASE_URL=postgres://... python bench/cone_search.py [--rows N] [--repeats N]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--radius", type=float, default=1.0, help="cone radius, degrees")
    parser.add_argument("--repeats", type=int, default=41, help="Q3C queries (random centres)")
    parser.add_argument("--scan-repeats", type=int, default=7, help="full-scan queries (slow)")
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        print("bench/cone_search.py needs PostgreSQL with q3c: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2

    import django

    django.setup()
    import numpy as np
    from django.db import connection

    from network.models import Network
    from targets.models import Target
    from targets.sky import cone_search

    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        network = Network.objects.create(name="Bench", slug="bench")
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SELECT setseed(0.42)")
            cursor.execute(
                """
                INSERT INTO targets_target (network_id, name, name_key, ra_deg, dec_deg, target_type, priority,
                    min_observations, required_filters, time_windows, is_active, metadata, total_observations,
                    unique_sites, observations_last_7d, created_at, updated_at)
                SELECT %s, 'B' || i, 'b' || i, random() * 360, degrees(asin(2 * random() - 1)), 'star', 1,
                    1, '[]', '[]', true, '{}', 0, 0, 0, now(), now()
                FROM generate_series(1, %s) AS i
                """,
                [network.pk, args.rows],
            )
            cursor.execute("ANALYZE targets_target")
        print(f"loaded {args.rows:,} targets in {time.perf_counter() - started:.1f} s")

        rng = np.random.default_rng(7)
        centres = [(float(rng.uniform(0, 360)), float(np.degrees(np.arcsin(rng.uniform(-1, 1)))))
                   for _ in range(args.repeats)]
        queryset = Target.objects.filter(network=network)

        def run(ra: float, dec: float) -> tuple[float, list[int]]:
            t0 = time.perf_counter()
            ids = list(cone_search(queryset, ra, dec, args.radius).values_list("pk", flat=True))
            return (time.perf_counter() - t0) * 1000, ids

        def server_ms(ra: float, dec: float) -> float:
            """PostgreSQL's own planning + execution time, without Python or the network."""
            report = cone_search(queryset, ra, dec, args.radius).values_list("pk", flat=True).explain(analyze=True)
            times = dict(line.strip().split(": ") for line in report.splitlines()
                         if line.strip().startswith(("Planning Time", "Execution Time")))
            return sum(float(v.split()[0]) for v in times.values())

        run(*centres[0])  # warm the cache and the connection
        q3c = [run(ra, dec) for ra, dec in centres]
        q3c_server = [server_ms(ra, dec) for ra, dec in centres[: args.scan_repeats]]
        plan = cone_search(queryset, *centres[0], args.radius).explain()
        with connection.cursor() as cursor:
            cursor.execute("SET enable_indexscan = off")
            cursor.execute("SET enable_bitmapscan = off")
        scan_plan = cone_search(queryset, *centres[0], args.radius).explain()
        scan = [run(ra, dec) for ra, dec in centres[: args.scan_repeats]]
        scan_server = [server_ms(ra, dec) for ra, dec in centres[: 3]]
        with connection.cursor() as cursor:
            cursor.execute("RESET enable_indexscan")
            cursor.execute("RESET enable_bitmapscan")

        for (_, fast_ids), (_, slow_ids) in zip(q3c, scan, strict=False):
            assert fast_ids == slow_ids, "index and scan disagree"
        q3c_ms = statistics.median(t for t, _ in q3c)
        scan_ms = statistics.median(t for t, _ in scan)
        rows = statistics.median(len(ids) for _, ids in q3c)
        print(f"plan (Q3C):  {'q3c' if 'target_q3c_idx' in plan else 'NO INDEX'} "
              f"({plan.splitlines()[0][:80]})")
        print(f"plan (scan): {scan_plan.splitlines()[0][:80]} ... Seq Scan={'Seq Scan' in scan_plan}")
        print(f"{args.radius} deg cone over {args.rows:,} targets, median {rows:.0f} rows returned")
        print(f"Q3C index   median {q3c_ms:8.2f} ms over {len(q3c)} cones (goal < 5 ms)")
        print(f"full scan   median {scan_ms:8.2f} ms over {len(scan)} cones (same query, index disabled)")
        print(f"speed-up    {scan_ms / q3c_ms:8.0f}x (goal >= 500x)")
        q3c_srv, scan_srv = statistics.median(q3c_server), statistics.median(scan_server)
        print(f"server side (EXPLAIN ANALYZE planning + execution): Q3C {q3c_srv:.2f} ms, "
              f"scan {scan_srv:.1f} ms, {scan_srv / q3c_srv:.0f}x")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
