"""Benchmark: one network scheduling pass, 1,000 sites x 100,000 targets, against the seed's way.

The peer is the seed design's ranking: for every site, for every target, astropy's AltAz
transform (one call per target, frame reused per site), then priority x campaign boost x
cadence deficit x altitude bonus x recent-site penalty, sorted. It runs on a subset (it
needs about a millisecond per pair), and our full pass runs on the same subset for the ratio.

Goals: full pass < 10 s on a 2-core machine; >= 300x faster than the astropy loop. With
``--part endpoint`` (or ``all``, when DATABASE_URL is set) it also times the agent endpoint
on a throwaway database (bench/scheduler_endpoint.py; goal: median < 5 ms).

    python bench/scheduler.py [--part pure|endpoint|all] [--targets 100000] [--sites 1000]
                              [--subset-targets 2000] [--subset-sites 10] [--requests 300]
"""
from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from datas_pipeline.sky.visibility import HorizonProfile  # noqa: E402

from scheduling import (  # noqa: E402
    POLICY_REDUNDANT,
    CampaignSpec,
    SchedulerConfig,
    SiteSpec,
    TargetSpec,
    TimeCriticalWindow,
    schedule_network,
)

NOW = dt.datetime(2026, 3, 20, 2, 0, tzinfo=dt.UTC).timestamp()
FILTER_SETS = [("V",), ("B", "V"), ("R",), ("L",), ("Ha", "OIII"), ("B", "V", "R", "I"), ()]
WHEELS = [("L", "Red", "Green", "Blue"), ("B", "V", "Rc", "Ic"), ("Luminance", "H-Alpha", "OIII", "SII"),
          ("Clear", "V", "R"), ("sg", "sr", "si", "B", "V")]


def make_targets(n: int, rng: np.random.Generator, sites: int) -> list[TargetSpec]:
    """A seeded network's targets: uniform on the sky, realistic mix of goals and campaigns."""
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    occultations = CampaignSpec("occ", "occultations", 2.0, POLICY_REDUNDANT, sites=3)
    transits = CampaignSpec("exo", "transits", 1.5)
    targets = []
    for i in range(n):
        kind = rng.random()
        tc = ()
        campaigns: tuple[CampaignSpec, ...] = ()
        if kind < 0.002:
            campaigns = (occultations,)
            tc = (TimeCriticalWindow(NOW - 600, NOW + 1800, 3.0),)
        elif kind < 0.01:
            campaigns = (transits,)
            start = NOW + rng.uniform(-6, 6) * 3600
            tc = (TimeCriticalWindow(start, start + 3 * 3600, 2.0),)
        recent = {int(s): int(rng.integers(1, 5)) for s in rng.integers(0, sites, rng.integers(0, 3))}
        targets.append(TargetSpec(
            id=i, name=f"T{i:06d}", ra_deg=float(ra[i]), dec_deg=float(dec[i]),
            priority=float(rng.integers(1, 11)), magnitude=float(rng.uniform(6, 18)),
            cadence_hours=float(rng.choice([6, 24, 72])) if rng.random() < 0.6 else None,
            last_observed_at=NOW - float(rng.uniform(0, 10 * 86400)) if rng.random() < 0.8 else None,
            min_observations=int(rng.integers(0, 50)), observations_total=int(rng.integers(0, 40)),
            hours_needed=float(rng.choice([0, 2, 10])), hours_observed=float(rng.uniform(0, 5)),
            filters=FILTER_SETS[i % len(FILTER_SETS)], exposure_sec=float(rng.choice([30, 60, 120, 300])),
            size_arcmin=float(rng.uniform(5, 90)) if rng.random() < 0.05 else None,
            campaigns=campaigns, time_critical=tc, recent_sites=recent,
        ))
    return targets


def make_sites(m: int, rng: np.random.Generator) -> list[SiteSpec]:
    """A seeded network's sites: where amateurs live, a third with horizon profiles, some cloudy."""
    sites = []
    for j in range(m):
        horizon = None
        if rng.random() < 0.3:
            az = np.sort(rng.choice(np.arange(0, 360, 15), 8, replace=False)).astype(float)
            horizon = HorizonProfile(tuple(az), tuple(rng.uniform(5, 35, 8)))
        sites.append(SiteSpec(
            id=j, name=f"S{j:04d}", latitude_deg=float(rng.uniform(-45, 62)),
            longitude_deg=float(rng.uniform(-180, 180)), elevation_m=float(rng.uniform(0, 2500)),
            filters=WHEELS[j % len(WHEELS)], fov_arcmin=float(rng.uniform(15, 120)),
            limiting_mag=float(rng.uniform(13, 19)), min_altitude_deg=float(rng.choice([15, 20, 30])),
            horizon=horizon, ha_limits_hours=(-5.0, 5.0) if rng.random() < 0.2 else None,
            twilight=str(rng.choice(["nautical", "astronomical"])),
            min_moon_separation_deg=20.0 if rng.random() < 0.5 else 0.0,
            weather="clear" if rng.random() < 0.8 else "cloudy", weather_reported_at=NOW - 120,
            reliability=float(rng.uniform(0.6, 1.0)),
        ))
    return sites


def seed_ranking(targets: list[TargetSpec], sites: list[SiteSpec], now: float) -> dict[object, list[object]]:
    """The seed design's ranking: astropy AltAz per target in a loop, product of five terms."""
    from astropy import units as u
    from astropy.coordinates import AltAz, EarthLocation, SkyCoord
    from astropy.time import Time
    from astropy.utils import iers

    iers.conf.auto_download = False
    when = Time(now, format="unix")
    ranked = {}
    for site in sites:
        frame = AltAz(obstime=when, location=EarthLocation(lat=site.latitude_deg * u.deg,
                                                           lon=site.longitude_deg * u.deg,
                                                           height=site.elevation_m * u.m))
        scores = []
        for target in targets:
            alt = SkyCoord(ra=target.ra_deg * u.deg, dec=target.dec_deg * u.deg).transform_to(frame).alt.deg
            if alt < site.min_altitude_deg:
                continue
            boost = np.prod([c.priority_boost for c in target.campaigns]) if target.campaigns else 1.0
            deficit = 1.0
            if target.cadence_hours:
                deficit = 3.0 if target.last_observed_at is None else min(
                    3.0, (now - target.last_observed_at) / 3600 / target.cadence_hours)
            altitude_bonus = np.sin(np.radians(alt))
            recent = 0.5 if site.id in target.recent_sites else 1.0
            scores.append((target.priority * boost * deficit * altitude_bonus * recent, target.id))
        ranked[site.id] = [t for _, t in sorted(scores, reverse=True)[:50]]
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=1_000)
    parser.add_argument("--subset-targets", type=int, default=2_000)
    parser.add_argument("--subset-sites", type=int, default=10)
    parser.add_argument("--part", choices=["pure", "endpoint", "all"], default="all")
    parser.add_argument("--requests", type=int, default=300, help="agent requests timed (endpoint part)")
    args = parser.parse_args()
    if args.part in ("pure", "all"):
        pure(args)
    if args.part in ("endpoint", "all"):
        import os

        if not os.environ.get("DATABASE_URL"):
            print("\nagent endpoint: skipped (set DATABASE_URL and REDIS_URL to time it)")
            return
        import scheduler_endpoint

        scheduler_endpoint.run(args.sites, args.targets, args.requests)


def pure(args: argparse.Namespace) -> None:
    """The pass over specs, and the seed's astropy loop on a subset."""
    rng = np.random.default_rng(20260320)
    tick = time.perf_counter()
    sites = make_sites(args.sites, rng)
    targets = make_targets(args.targets, rng, args.sites)
    print(f"generated {args.targets:,} targets and {args.sites:,} sites in {time.perf_counter() - tick:.1f} s")

    config = SchedulerConfig()
    schedule_network(targets[:1000], sites[:20], NOW, config)  # warm imports and caches
    tick = time.perf_counter()
    full = schedule_network(targets, sites, NOW, config)
    full_s = time.perf_counter() - tick
    lists = [s for s in full.sites.values() if s.entries]
    entries = sum(len(s.entries) for s in lists)
    print(f"\nfull pass: {args.sites:,} sites x {args.targets:,} targets = {args.sites * args.targets:,} pairs")
    print(f"  {full_s:.2f} s  ({len(lists)} sites with a list, {entries:,} entries; "
          f"{int(full.stats['pairs_refined']):,} pairs checked exactly)")
    print("  stages: " + ", ".join(f"{k} {v:.2f}" for k, v in full.stats.items() if k.endswith("_s")))
    reasons: dict[str, int] = {}
    for s in full.sites.values():
        if s.reason:
            key = s.reason.split(" (")[0].split(" at ")[0]
            reasons[key] = reasons.get(key, 0) + 1
    print(f"  empty lists: {reasons}")
    print(f"  goal < 10 s: {'met' if full_s < 10 else 'NOT met'}")

    sub_targets, sub_sites = targets[:args.subset_targets], sites[:args.subset_sites]
    pairs = len(sub_targets) * len(sub_sites)
    tick = time.perf_counter()
    seed_ranking(sub_targets, sub_sites, NOW)
    seed_s = time.perf_counter() - tick
    runs = []
    for _ in range(5):
        tick = time.perf_counter()
        schedule_network(sub_targets, sub_sites, NOW, config)
        runs.append(time.perf_counter() - tick)
    ours_s = float(np.median(runs))
    print(f"\nsubset: {len(sub_sites)} sites x {len(sub_targets):,} targets = {pairs:,} pairs")
    print(f"  seed (astropy AltAz per target, looped): {seed_s:.2f} s  ({seed_s / pairs * 1e3:.3f} ms/pair)")
    print(f"  DATAS scheduler, full pass on the subset: {ours_s * 1e3:.1f} ms (median of 5)")
    print(f"  ratio: {seed_s / ours_s:.0f}x  (goal >= 300x: {'met' if seed_s / ours_s >= 300 else 'NOT met'})")
    print(f"  per pair at full scale: astropy loop {seed_s / pairs * 1e6:.0f} us vs "
          f"{full_s / (args.sites * args.targets) * 1e9:.0f} ns "
          f"({seed_s / pairs / (full_s / (args.sites * args.targets)):,.0f}x)")


if __name__ == "__main__":
    main()
