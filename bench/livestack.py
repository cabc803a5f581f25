"""Live stacking benchmark: time per added frame at 1k^2 and 4k^2 as the stack grows.

Peers in the same run: an astroalign live stacker (``astroalign.register`` on the first
frame, then a running sum: the seed's approach with rotation), and a naive one that
re-averages every frame so far after each arrival (what a batch stack per frame costs).
Frames drift and rotate slowly like an alt-az or poorly polar-aligned mount.

    PYTHONPATH=. python bench/livestack.py [--frames 30] [--sizes 1024 4096]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datas_pipeline.stacking.live import LiveStacker  # noqa: E402
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars  # noqa: E402
from datas_pipeline.synthetic.sequence import Pose  # noqa: E402


def frames(n: int, count: int, seed: int):
    """A drifting, slowly rotating sequence; 4k^2 frames are rendered once and rolled by whole px."""
    rng = np.random.default_rng(seed)
    big = int(n * 1.2)
    stars = random_stars((big, big), int(500 * (n / 1024) ** 2 * 1.44), rng)
    stars["x"] -= (big - n) / 2
    stars["y"] -= (big - n) / 2
    still = render_stars((n, n), stars) if n > 2048 else None
    for i in range(count):
        if still is not None:
            electrons = np.roll(still, (i % 7 - 3, 2 * (i % 5) - 4), axis=(0, 1))
        else:
            pose = Pose(0.8 * i, -0.5 * i, 0.02 * i)
            moved = stars.copy()
            moved["x"], moved["y"] = pose.apply(stars["x"], stars["y"], (n, n))
            electrons = render_stars((n, n), moved)
        yield expose(electrons, rng, sky=300.0)


def ours(sequence) -> list[float]:
    stacker = LiveStacker()
    times = []
    for frame in sequence:
        start = time.perf_counter()
        report = stacker.add(frame)
        times.append(time.perf_counter() - start)
        assert report.accepted, report.reason
    return times


def astroalign_live(sequence) -> list[float]:
    import astroalign as aa

    times, total, count, reference = [], None, None, None
    for frame in sequence:
        start = time.perf_counter()
        if reference is None:
            reference = frame
            total, count = frame.astype(np.float64), np.ones(frame.shape)
        else:
            aligned, footprint = aa.register(frame, reference)
            total += np.where(footprint, 0.0, aligned)
            count += ~footprint
        times.append(time.perf_counter() - start)
    return times


def naive_restack(sequence) -> list[float]:
    """Keep every (already aligned) frame and average them all again on each arrival."""
    kept, times = [], []
    for frame in sequence:
        start = time.perf_counter()
        kept.append(frame)
        np.mean(np.stack(kept), axis=0)
        times.append(time.perf_counter() - start)
    return times


def report(name: str, times: list[float]) -> None:
    n = len(times)
    buckets = [times[1:6], times[n // 2 - 2:n // 2 + 3], times[-5:]]
    ms = [statistics.median(b) * 1e3 for b in buckets]
    print(f"{name:>22}: frames 2-6 {ms[0]:7.1f} ms | middle {ms[1]:7.1f} ms | last 5 {ms[2]:7.1f} ms"
          f" | growth last/first {ms[2] / ms[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    args = parser.parse_args()
    for n in args.sizes:
        count = args.frames if n <= 2048 else max(12, args.frames // 2)
        print(f"\n== {count} frames of {n}x{n} ==")
        data = list(frames(n, count, seed=3))
        ours_times = ours(data)
        aa_times = astroalign_live(data)
        report("ours (LiveStacker)", ours_times)
        report("astroalign + sum", aa_times)
        report("naive re-stack", naive_restack(data))
        print(f"{'':>22}  median per frame: ours {statistics.median(ours_times[1:]) * 1e3:.0f} ms, "
              f"astroalign {statistics.median(aa_times[1:]) * 1e3:.0f} ms "
              f"({statistics.median(aa_times[1:]) / statistics.median(ours_times[1:]):.1f}x)")


if __name__ == "__main__":
    main()
