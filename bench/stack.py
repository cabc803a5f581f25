"""Stacking benchmark: ours against siril-cli (sigma, winsorized) and ccdproc.combine (sigma clip).

One registered set of 25 frames per size (synthetic stars, Poisson and read noise, sky
drift, cosmic rays, two satellite trails), written as float32 FITS scaled to [0, 1] (the
range Siril's 32-bit mode expects). Every measurement runs in a fresh process so its peak
resident memory is its own; times include reading the frames and writing the master.
Siril's sequence conversion is done beforehand and not timed; its own "Execution time" for
the stack is reported beside the wall time of the siril-cli run. ccdproc has no winsorized
clipping and its sigma clip is a single pass around the median.

    PYTHONPATH=. python bench/stack.py [--sizes 1024 4096] [--frames 25] [--memory 2GB]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def make_set(directory: Path, n: int, frames: int, seed: int = 5) -> list[Path]:
    from datas_pipeline.io.fits import write_frame
    from datas_pipeline.synthetic.fields import expose, random_stars, render_stars
    from datas_pipeline.synthetic.sequence import inject_cosmic_rays, inject_trail

    lights = directory / "lights"
    existing = sorted(lights.glob("light_*.fits"))
    if len(existing) == frames:
        return existing
    shutil.rmtree(directory, ignore_errors=True)
    lights.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    stars = random_stars((n, n), int(500 * (n / 1024) ** 2), rng, margin=6)
    electrons = render_stars((n, n), stars, fwhm=3.0)
    paths = []
    for i in range(frames):
        image = expose(electrons, rng, sky=float(rng.uniform(900, 1100)), read_noise=5.0)
        inject_cosmic_rays(image, int(20 * (n / 1024) ** 2), rng)
        if i in (3, 17):
            inject_trail(image, rng, amplitude_adu=4000.0)
        path = lights / f"light_{i + 1:04d}.fits"
        write_frame(path, image / 65535.0)
        paths.append(path)
    return paths


def siril_prepare(directory: Path) -> None:
    """Convert the frames to a Siril sequence (again each time: Siril caches frame statistics
    in the .seq file, and ours computes them on every run)."""
    shutil.rmtree(directory / "process", ignore_errors=True)
    script = directory / "prep.ssf"
    script.write_text("requires 1.0.0\nsetext fits\nset32bits\ncd lights\nconvert light -out=../process\nclose\n")
    subprocess.run(["siril-cli", "-d", str(directory), "-s", str(script)], check=True, capture_output=True)


# -- one measurement per process ---------------------------------------------------------------
def worker(tool: str, method: str, directory: Path, memory: str) -> dict:
    paths = sorted((directory / "lights").glob("light_*.fits"))
    out = directory / f"out_{tool}_{method}.fits"
    if tool == "siril":
        siril_prepare(directory)
        letter = {"sigma": "s", "winsorized": "w"}[method]
        script = directory / f"stack_{letter}.ssf"
        script.write_text(f"requires 1.0.0\nsetext fits\nset32bits\ncd process\n"
                          f"stack light rej {letter} 3 3 -norm=add -out=../{out.stem}\nclose\n")
        start = time.perf_counter()
        run = subprocess.run(["siril-cli", "-d", str(directory), "-s", str(script)], capture_output=True, text=True)
        seconds = time.perf_counter() - start
        if run.returncode != 0:
            raise RuntimeError(run.stdout[-2000:] + run.stderr[-2000:])
        times = re.findall(r"Execution time: ([0-9.]+) (ms|s)", run.stdout)
        internal = [float(v) / (1000 if unit == "ms" else 1) for v, unit in times]
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return {"seconds": seconds, "internal_seconds": max(internal) if internal else None,
                "peak_mb": peak, "baseline_mb": 0.0}
    if tool in ("ours", "ours-serial"):
        from datas_pipeline.stacking.combine import StackOptions, parse_memory, stack_frames, write_master

        baseline = rss_mb()
        start = time.perf_counter()
        result = stack_frames(paths, StackOptions(method=method, normalization="additive",
                                                  memory=parse_memory(memory)),
                              threads=1 if tool == "ours-serial" else None)
        write_master(out, result, overwrite=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"seconds": seconds, "peak_mb": peak, "baseline_mb": baseline, "bands": result.bands}
    if tool == "ccdproc":
        import ccdproc
        from astropy.stats import mad_std  # noqa: F401 - the documented dev_func alternative
        from datas_pipeline.stacking.combine import parse_memory

        baseline = rss_mb()
        start = time.perf_counter()
        combined = ccdproc.combine([str(p) for p in paths], method="average", sigma_clip=True,
                                   sigma_clip_low_thresh=3, sigma_clip_high_thresh=3,
                                   sigma_clip_func=np.ma.median, sigma_clip_dev_func=np.ma.std,
                                   mem_limit=parse_memory(memory), unit="adu", dtype=np.float32)
        combined.write(out, overwrite=True)
        seconds = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        return {"seconds": seconds, "peak_mb": peak, "baseline_mb": baseline}
    raise ValueError(tool)


def measure(tool: str, method: str, directory: Path, memory: str) -> dict:
    run = subprocess.run([sys.executable, __file__, "--worker", tool, method, str(directory), memory],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if run.returncode != 0:
        return {"error": run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "failed"}
    return json.loads(run.stdout.strip().splitlines()[-1])


def agreement(directory: Path, method: str) -> str:
    from astropy.io import fits

    ours, siril = directory / f"out_ours_{method}.fits", directory / f"out_siril_{method}.fits"
    if not (ours.exists() and siril.exists()):
        return "n/a"
    d = np.abs(fits.getdata(ours).astype(np.float64) - fits.getdata(siril).astype(np.float64)) * 65535
    return f"|ours - siril| median {np.median(d):.4f} ADU, 99% {np.percentile(d, 99):.3f} ADU, max {d.max():.1f} ADU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--frames", type=int, default=25)
    parser.add_argument("--memory", default="2GB", help="budget for ours and mem_limit for ccdproc")
    parser.add_argument("--small-memory", default="512MB", help="a second, tight budget for ours")
    parser.add_argument("--work", default="/tmp/datas-bench-stack")
    parser.add_argument("--skip-ccdproc-above", type=int, default=4096)
    parser.add_argument("--repeat", type=int, default=3, help="runs per tool up to 2048^2 (median reported)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        tool, method, directory, memory = args.worker
        print(json.dumps(worker(tool, method, Path(directory), memory)))
        return
    version = subprocess.run(["siril-cli", "--version"], capture_output=True, text=True).stdout.strip()
    import ccdproc

    print(f"{version}; ccdproc {ccdproc.__version__}; numpy {np.__version__}; cpus {os.cpu_count()}")
    for n in args.sizes:
        directory = Path(args.work) / str(n)
        make_set(directory, n, args.frames)
        print(f"\n== {args.frames} x {n}x{n} float32 ({args.frames * n * n * 4 / 2**20:.0f} MB of frames) ==")
        repeats = args.repeat if n <= 2048 else 1
        for method in ("sigma", "winsorized"):
            runs = {"ours": [], "siril": [], "tight": []}
            for _ in range(repeats):           # interleaved, so load on the machine hits all alike
                runs["ours"].append(measure("ours", method, directory, args.memory))
                runs["siril"].append(measure("siril", method, directory, args.memory))
                runs["tight"].append(measure("ours", method, directory, args.small_memory))
            ours, siril, tight = (median_run(runs[k]) for k in ("ours", "siril", "tight"))
            line = (f"{method:>10}: ours {ours['seconds']:.2f} s (peak +{ours['peak_mb'] - ours['baseline_mb']:.0f} MB"
                    f" over a {ours['baseline_mb']:.0f} MB interpreter, budget {args.memory}, {ours['bands']} band(s))"
                    f" | ours @ {args.small_memory}: {tight['seconds']:.2f} s (peak +{tight['peak_mb'] - tight['baseline_mb']:.0f}"
                    f" MB, {tight['bands']} bands) | siril {siril['seconds']:.2f} s wall, "
                    f"{siril['internal_seconds']:.2f} s stacking (peak {siril['peak_mb']:.0f} MB)"
                    f" | siril/ours {siril['seconds'] / ours['seconds']:.1f}x  [median of {repeats}]")
            print(line, flush=True)
            print(f"{'':>12}{agreement(directory, method)}", flush=True)
        if n <= args.skip_ccdproc_above:
            cc_runs, ours_runs, serial_runs = [], [], []
            for _ in range(repeats):
                cc_runs.append(measure("ccdproc", "sigma", directory, args.memory))
                ours_runs.append(measure("ours", "sigma", directory, args.memory))
                serial_runs.append(measure("ours-serial", "sigma", directory, args.memory))
            if any("error" in r for r in cc_runs):
                print(f"   ccdproc: {cc_runs[0].get('error')}")
            else:
                cc, ours, serial = median_run(cc_runs), median_run(ours_runs), median_run(serial_runs)
                print(f"   ccdproc sigma clip {cc['seconds']:.2f} s (peak +{cc['peak_mb'] - cc['baseline_mb']:.0f} MB)"
                      f" vs ours sigma, threaded {ours['seconds']:.2f} s: ccdproc/ours "
                      f"{cc['seconds'] / ours['seconds']:.1f}x; serial (1 thread) {serial['seconds']:.2f} s: "
                      f"{cc['seconds'] / serial['seconds']:.1f}x  [median of {repeats}]", flush=True)


def median_run(runs: list[dict]) -> dict:
    good = [r for r in runs if "error" not in r]
    if not good:
        raise RuntimeError(runs[0]["error"])
    return sorted(good, key=lambda r: r["seconds"])[len(good) // 2]


if __name__ == "__main__":
    main()
