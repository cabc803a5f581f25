"""Moving objects: synthetic tracking + linking (datas_pipeline.movers) vs a frame-to-frame linker alone.

The baseline is SpacePixels/JTransient's approach, run in the same process on the same
frames: the same static sky and residual SNR maps, then only single-frame detections
(>= 5 sigma) linked into constant-rate tracks (``MoverOptions(searches=("link",))``).
Printed: the time for 25 x 1k^2 and 100 x 2k^2 sequences read from FITS files (one and two
workers), the recall table against (rate, per-frame SNR) for both, false tracks per
24-frame 1k^2 sequence without movers, and the astrometric error at SNR >= 10.

Run: python bench/movers.py [--quick] [--skip-2k]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import compare, header
from datas_pipeline.io.fits import write_frame
from datas_pipeline.movers import MoverOptions, find_movers
from datas_pipeline.movers.evaluate import match_tracks
from datas_pipeline.movers.synthetic import iter_mover_frames, make_mover_sequence, random_movers

RATES = (0.05, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 50.0)
SNRS = (2.0, 3.0, 5.0, 10.0, 20.0)
LINKER = MoverOptions(searches=("link",))


def write_sequence(folder: Path, n_frames: int, size: int, seed: int, n_movers: int = 12) -> tuple[list[Path], np.ndarray]:
    """Frames with movers (rates 0.1-10 px/frame, SNR 3-20) and a trail, written one at a time."""
    rng = np.random.default_rng(seed)
    truth = random_movers(n_movers, (size, size), n_frames, rng, rates=(0.1, 10.0), snrs=(3.0, 20.0))
    frames = iter_mover_frames(n_frames, (size, size), truth, seed, trail_frames=(n_frames // 3,))
    truth, _, _ = next(frames)
    paths = []
    for k, (image, head, _) in enumerate(frames):
        paths.append(write_frame(folder / f"f{k:04d}.fits", image, head))
    return paths, truth


def timing(n_frames: int, size: int, folder: Path) -> None:
    paths, truth = write_sequence(folder, n_frames, size, seed=size + n_frames)
    names = [str(p) for p in paths]
    runs = {}
    for label, options in (("linker alone", LINKER), ("ours, 1 worker", MoverOptions(workers=1)),
                           ("ours, 2 workers", MoverOptions(workers=2))):
        start = time.perf_counter()
        result = find_movers(names, options=options)
        runs[label] = (time.perf_counter() - start, result)
    t_ref = runs["ours, 2 workers"][1].parameters["t_ref_frame"]
    for label, (seconds, result) in runs.items():
        match = match_tracks(result.tracks, truth, t_ref, n_frames - 1)
        stages = ", ".join(f"{k} {v:.2f}" for k, v in result.timings.items() if k != "total")
        print(f"   {n_frames} x {size}^2 {label:<16} {seconds:6.2f} s  recall {match.recall:4.0%} "
              f"({len(truth)} movers, rates 0.1-10, SNR 3-20)  false {match.false_tracks}  [{stages}]")
    compare(f"{n_frames} x {size}^2 time (2 workers vs linker)", runs["ours, 2 workers"][0],
            runs["linker alone"][0], "linker", "s")


def recall_table(size: int, n_frames: int, per_cell: int) -> None:
    found = {name: np.zeros((len(RATES), len(SNRS))) for name in ("ours", "linker")}
    errors, false_ours, false_link, seconds = [], 0, 0, []
    for ri, rate in enumerate(RATES):
        rng = np.random.default_rng(1000 + ri)
        snr_list = [s for s in SNRS for _ in range(per_cell)]
        truth = random_movers(len(snr_list), (size, size), n_frames, rng, rates=[rate] * len(snr_list),
                              snrs=snr_list)
        seq = make_mover_sequence(n_frames, (size, size), truth, seed=2000 + ri, trail_frames=(7,))
        start = time.perf_counter()
        ours = find_movers(seq.frames, headers=seq.headers, options=MoverOptions(workers=2))
        seconds.append(time.perf_counter() - start)
        linker = find_movers(seq.frames, headers=seq.headers, options=LINKER)
        t_ref = ours.parameters["t_ref_frame"]
        for name, result in (("ours", ours), ("linker", linker)):
            match = match_tracks(result.tracks, seq.movers, t_ref, n_frames - 1)
            for si, snr in enumerate(SNRS):
                found[name][ri, si] = np.mean(match.found[seq.movers["snr"] == snr] >= 0)
            if name == "ours":
                false_ours += match.false_tracks
                for i in np.flatnonzero((seq.movers["snr"] >= 10) & (match.found >= 0)):
                    m, track = seq.movers[i], result.tracks[match.found[i]]
                    errors += [np.hypot(p["x"] - m["x"] - m["vx"] * p["frame"], p["y"] - m["y"] - m["vy"] * p["frame"])
                               for p in track.positions]
            else:
                false_link += match.false_tracks
    print(f"   recall, {n_frames} x {size}^2 frames, {per_cell} movers per cell (ours / linker alone):")
    print("   rate px/frame " + "".join(f"   SNR {s:<5g}" for s in SNRS))
    for ri, rate in enumerate(RATES):
        cells = "".join(f"  {found['ours'][ri, si]:4.0%}/{found['linker'][ri, si]:4.0%}" for si in range(len(SNRS)))
        print(f"   {rate:>13g} {cells}")
    band = [i for i, r in enumerate(RATES) if 0.1 <= r <= 10]
    snr3 = SNRS.index(3.0)
    print(f"   recall at SNR 3, rates 0.1-10: ours {found['ours'][band, snr3].mean():.0%}, "
          f"linker {found['linker'][band, snr3].mean():.0%} (goal >= 90 %)")
    ours_all, link_all = found["ours"].mean(), found["linker"].mean()
    print(f"   recall over the whole table: ours {ours_all:.0%}, linker {link_all:.0%} "
          f"(shift-and-stack adds {ours_all - link_all:+.0%})")
    print(f"   extra tracks beside {len(RATES) * len(SNRS) * per_cell} movers: ours {false_ours}, linker {false_link}")
    print(f"   astrometric error at SNR >= 10: rms {np.sqrt(np.mean(np.square(errors))):.3f} px, "
          f"95th percentile {np.percentile(errors, 95):.3f} px (goal 0.3 px); search {np.median(seconds):.1f} s each")


def false_tracks(size: int, n_frames: int, count: int) -> None:
    totals = []
    for seed in range(count):
        seq = make_mover_sequence(n_frames, (size, size), None, seed=500 + seed, trail_frames=(5,),
                                  cosmic_rays_per_frame=20, hot_pixel_fraction=3e-4)
        result = find_movers(seq.frames, headers=seq.headers, options=MoverOptions(workers=2))
        totals.append(len(result.tracks))
    print(f"   false tracks without movers ({count} x {n_frames} x {size}^2 with hot pixels, cosmic rays, a trail): "
          f"{np.mean(totals):.2f} per sequence (goal <= 1) {totals}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller recall table (512^2, 2 per cell)")
    parser.add_argument("--skip-2k", action="store_true", help="skip the 100 x 2k^2 timing")
    parser.add_argument("--part", choices=("all", "timing", "recall"), default="all")
    args = parser.parse_args()
    header("moving objects: datas_pipeline.movers vs a frame-to-frame linker (SpacePixels' approach)")
    print(f"   load average {os.getloadavg()[0]:.1f} at start (timings scale with it on a shared machine)")
    if args.part in ("all", "timing"):
        with tempfile.TemporaryDirectory(prefix="bench-movers-") as tmp:
            (Path(tmp) / "a").mkdir()
            timing(25, 1024, Path(tmp) / "a")
            if not args.skip_2k:
                (Path(tmp) / "b").mkdir()
                timing(100, 2048, Path(tmp) / "b")
    if args.part in ("all", "recall"):
        recall_table(512 if args.quick else 1024, 24, 2 if args.quick else 4)
        false_tracks(1024, 24, 2 if args.quick else 4)


if __name__ == "__main__":
    main()
