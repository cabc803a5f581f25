"""Registration benchmark: ours against astroalign (find_transform + apply_transform).

Synthetic 1k^2 and 4k^2 pairs with known transforms (shift, any rotation, small scale),
plus cloudy, star-poor and unrelated frames that must be refused. For every pair both
tools start from the two images (both detect stars in both), find the transform and
resample the frame onto the reference (ours with bicubic, as astroalign's apply_transform,
and with our default Lanczos-3). Reported: wall time per pair (median), the largest
transform error at the reference corners against the truth, and false accepts (a
transform returned and used although it is more than 1 px wrong).

    PYTHONPATH=. python bench/register.py [--quick]
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from datas_pipeline.parallel import resolve_jobs  # noqa: E402
from datas_pipeline.registration.register import prepare_reference, register_image  # noqa: E402
from datas_pipeline.registration.warp import warp_image  # noqa: E402
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars  # noqa: E402
from datas_pipeline.synthetic.sequence import Pose  # noqa: E402


def sky(n: int, n_stars: int, seed: int) -> np.ndarray:
    """Stars over the circle a rotated frame can see (reference coordinates)."""
    rng = np.random.default_rng(seed)
    big = int(n * 1.5)
    stars = random_stars((big, big), int(n_stars * 2.25), rng)
    stars["x"] -= (big - n) / 2
    stars["y"] -= (big - n) / 2
    return stars


def render(n: int, stars: np.ndarray, pose: Pose, seed: int, transparency: float = 1.0) -> np.ndarray:
    moved = stars.copy()
    moved["x"], moved["y"] = pose.apply(stars["x"], stars["y"], (n, n))
    inside = (moved["x"] > -20) & (moved["x"] < n + 20) & (moved["y"] > -20) & (moved["y"] < n + 20)
    moved = moved[inside]
    moved["flux"] *= transparency
    rng = np.random.default_rng(seed)
    sky_level = 200.0 if transparency == 1.0 else 800.0
    return expose(render_stars((n, n), moved, fwhm=3.0), rng, sky=sky_level)


def corner_error(mapping, pose: Pose, n: int) -> float:
    cx = np.array([0.0, n - 1.0, 0.0, n - 1.0])
    cy = np.array([0.0, 0.0, n - 1.0, n - 1.0])
    tx, ty = pose.apply(cx, cy, (n, n))
    mx, my = mapping(cx, cy)
    return float(np.max(np.hypot(mx - tx, my - ty)))


def ours(ref: np.ndarray, frame: np.ndarray, n: int, pose: Pose | None, kernel: str = "bicubic"):
    start = time.perf_counter()
    result = register_image(prepare_reference(ref), frame)
    if result.accepted:
        warp_image(frame, result.transform, ref.shape, kernel=kernel)
    elapsed = time.perf_counter() - start
    error = corner_error(result.transform.apply, pose, n) if result.accepted and pose else None
    return elapsed, result.accepted, error, result.reason


def astroalign_pair(ref: np.ndarray, frame: np.ndarray, n: int, pose: Pose | None):
    import astroalign as aa

    start = time.perf_counter()
    try:
        transform, _ = aa.find_transform(frame, ref)
        aa.apply_transform(transform, frame, ref)
        accepted, reason = True, "ok"
    except Exception as exc:  # astroalign raises MaxIterError, ValueError, TypeError
        transform, accepted, reason = None, False, f"{type(exc).__name__}: {exc}"
    elapsed = time.perf_counter() - start
    error = None
    if accepted and pose:
        # astroalign maps frame (source) to reference (target); invert for reference -> frame.
        inv = transform.inverse

        def mapping(x, y):
            p = inv(np.column_stack([x, y]))
            return p[:, 0], p[:, 1]

        error = corner_error(mapping, pose, n)
    return elapsed, accepted, error, reason


def cases(n: int, n_good: int, rng: np.random.Generator):
    good = [Pose(float(rng.uniform(-60, 60)), float(rng.uniform(-60, 60)),
                 float(rng.choice([rng.uniform(-2, 2), rng.uniform(-180, 180)])), float(1 + rng.normal(0, 0.001)))
            for _ in range(n_good)]
    return good


def run(n: int, n_stars: int, n_good: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    stars = sky(n, n_stars, seed)
    ref = render(n, stars, Pose(), seed + 1)
    rows = []
    for i, pose in enumerate(cases(n, n_good, rng)):
        rows.append(("good", pose, render(n, stars, pose, seed + 10 + i)))
    for j, (pose, transparency) in enumerate(((Pose(5.0, -3.0, 0.5), 0.03), (Pose(-8.0, 2.0, 90.0), 0.02),
                                              (Pose(3.0, 9.0, -1.0), 0.01))):
        rows.append((f"cloudy {transparency:.0%}", pose, render(n, stars, pose, seed + 100 + j, transparency)))
    poor = random_stars((n, n), 4, np.random.default_rng(seed + 200), flux_range=(5e3, 2e4))
    rows.append(("star-poor", None, expose(render_stars((n, n), poor), np.random.default_rng(seed + 201), sky=200.0)))
    other = sky(n, n_stars, seed + 300)
    rows.append(("unrelated", None, render(n, other, Pose(), seed + 301)))
    def ours_lanczos(*a):
        return ours(*a, kernel="lanczos3")

    results = {"ours": [], "ours lanczos3": [], "astroalign": []}
    for kind, pose, frame in rows:
        for name, func in (("ours", ours), ("ours lanczos3", ours_lanczos), ("astroalign", astroalign_pair)):
            elapsed, accepted, error, reason = func(ref, frame, n, pose)
            # Accepting a cloudy frame is right if the transform is right; a wrong one is a false accept.
            false_accept = accepted and (pose is None or error is None or error > 1.0)
            results[name].append(dict(kind=kind, seconds=elapsed, accepted=accepted, error=error,
                                      false_accept=false_accept, reason=reason))
    return results


def batch(n: int, n_stars: int, n_good: int, seed: int, jobs: int) -> dict:
    """The good frames as files registered in one batch (read, register, warp, write), serially
    and on ``jobs`` processes: seconds per frame, and whether the outputs are identical."""
    import tempfile

    from datas_pipeline.io.fits import write_frame
    from datas_pipeline.registration.batch import BatchSettings, register_files

    rng = np.random.default_rng(seed)
    stars = sky(n, n_stars, seed)
    ref = render(n, stars, Pose(), seed + 1)
    reference = prepare_reference(ref)
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = [write_frame(folder / f"f{i}.fits", render(n, stars, pose, seed + 10 + i))
                 for i, pose in enumerate(cases(n, n_good, rng))]
        for label, workers in (("serial", 1), (f"{jobs} jobs", jobs)):
            settings = BatchSettings("ref", folder / label.replace(" ", "_"), kernel="bicubic")
            start = time.perf_counter()
            records = list(register_files(reference, paths, settings, workers))
            out[label] = (time.perf_counter() - start) / len(paths)
            out[label + " records"] = records
    one, two = out["serial records"], out[f"{jobs} jobs records"]
    out["identical"] = all({k: v for k, v in a.items() if k != "output"} == {k: v for k, v in b.items() if k != "output"}
                           for a, b in zip(one, two, strict=True))
    return out


def summarise(n: int, results: dict) -> None:
    print(f"\n== {n}x{n} ==")
    summary = {}
    for name, rows in results.items():
        good = [r for r in rows if r["kind"] == "good"]
        t = statistics.median(r["seconds"] for r in good)
        errors = [r["error"] for r in good if r["error"] is not None]
        summary[name] = t
        print(f"{name:>13}: median {t * 1e3:8.1f} ms/pair | accepted {sum(r['accepted'] for r in good)}/{len(good)} good"
              f" | max corner error {max(errors) if errors else float('nan'):.4f} px"
              f" | false accepts {sum(r['false_accept'] for r in rows)} of {len(rows)}")
        for r in rows:
            if r["kind"] != "good" and name != "ours lanczos3":
                verdict = "ACCEPTED (wrong)" if r["false_accept"] else (
                    f"accepted, error {r['error']:.3f} px" if r["accepted"] else "refused")
                print(f"{'':>12}{r['kind']:>11}: {verdict}: {r['reason'][:90]}")
    print(f"speed-up astroalign / ours: {summary['astroalign'] / summary['ours']:.1f}x with bicubic (astroalign's"
          f" interpolation), {summary['astroalign'] / summary['ours lanczos3']:.1f}x with Lanczos-3 (our default)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k^2 only")
    parser.add_argument("--jobs", type=int, help="worker processes (default: DATAS_WORKERS, else the cores)")
    args = parser.parse_args()
    import astroalign

    print(f"python {platform.python_version()}, numpy {np.__version__}, astroalign {astroalign.__version__}, "
          f"{platform.machine()} x{__import__('os').cpu_count()}")
    jobs = resolve_jobs(args.jobs)
    sizes = [(1024, 500, 10, 1)] + ([] if args.quick else [(4096, 4000, 4, 2)])
    for n, n_stars, n_good, seed in sizes:
        results = run(n, n_stars, n_good, seed=seed)
        summarise(n, results)
        peer = statistics.median(r["seconds"] for r in results["astroalign"] if r["kind"] == "good")
        files = batch(n, n_stars, max(n_good, 2 * jobs), seed, jobs)
        print(f"batch of files (read + register + bicubic warp + write, pool started per batch): "
              f"serial {files['serial'] * 1e3:.1f} ms/frame ({peer / files['serial']:.1f}x astroalign's pair time), "
              f"{jobs} jobs {files[f'{jobs} jobs'] * 1e3:.1f} ms/frame ({peer / files[f'{jobs} jobs']:.1f}x); "
              f"records {'identical' if files['identical'] else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
