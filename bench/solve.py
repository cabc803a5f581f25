"""Plate solving: hinted solve time, and WCS propagation per frame of a pointing sequence.

Synthetic 1024x1024 frames of real Tycho-2 stars at a known WCS (7"/px, a 2 degree field).
Hinted solve: ours (sep star list -> solve-field) vs solve-field on the FITS image with the
same hints. Propagation: each frame of a dithered sequence gets its WCS from the solved
reference through the star match, vs solving that frame again with solve-field.
Run: python bench/solve.py [--frames 20] [--blind]
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import compare, header, tool_version
from datas_pipeline.astrometry.solve import SolveHints, propagate_wcs, solve_image
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.io.fits import write_frame
from datas_pipeline.synthetic.fields import catalog_stars, expose, make_wcs, sky_image

SHAPE = (1024, 1024)
SCALE = 7.0
FIELDS = [(56.75, 24.12), (83.8, -5.4), (280.0, 38.0)]


def render(truth, rng) -> np.ndarray:
    ra, dec = truth.wcs.crval
    stars = catalog_stars(truth, SHAPE, tycho2_cone(ra, dec, 2.5), flux_at_mag0=3e8)
    return expose(sky_image(SHAPE, stars, sky=100.0, fwhm=2.6), rng, sky=0.0)


def max_error(wcs, truth) -> float:
    gy, gx = np.mgrid[0:SHAPE[0]:64, 0:SHAPE[1]:64]
    tx, ty = truth.all_world2pix(*wcs.all_pix2world(gx.ravel(), gy.ravel(), 0), 0)
    return float(np.hypot(tx - gx.ravel(), ty - gy.ravel()).max())


def solve_field_on_image(path: Path, hints: SolveHints | None, cpu_limit: int) -> float:
    command = ["solve-field", str(path), "--no-plots", "--overwrite", "--dir", str(path.parent / "sf"),
               "--downsample", "2", "--cpulimit", str(cpu_limit), "--new-fits", "none"]
    if hints is not None:
        command += ["--scale-units", "arcsecperpix", "--scale-low", str(SCALE * 0.85), "--scale-high",
                    str(SCALE * 1.15), "--ra", str(hints.ra_deg), "--dec", str(hints.dec_deg), "--radius", "2"]
    start = time.perf_counter()
    subprocess.run(command, capture_output=True, timeout=cpu_limit * 3 + 30)
    seconds = time.perf_counter() - start
    if not (path.parent / "sf" / f"{path.stem}.wcs").is_file():
        print(f"   solve-field did not solve {path.name}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--blind", action="store_true", help="also time blind solves (minutes each)")
    args = parser.parse_args()
    header("plate solving and WCS propagation")
    print(f"   peer: solve-field ({tool_version(['solve-field', '--version'])}), Tycho-2 indexes")
    rng = np.random.default_rng(11)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours_t, peer_t, errors = [], [], []
        for i, (ra, dec) in enumerate(FIELDS):
            truth = make_wcs(ra, dec, SCALE, SHAPE, rotation_deg=15.0 * i)
            image = render(truth, rng)
            hints = SolveHints(ra + 0.4, dec - 0.3, 2.0, SCALE)
            result = solve_image(image, hints, cpu_limit_s=30)
            ours_t.append(result.seconds)
            errors.append(max_error(result.wcs, truth) if result.solved else float("inf"))
            path = write_frame(folder / f"field{i}.fits", image, dtype=np.uint16)
            peer_t.append(solve_field_on_image(path, hints, 30))
        compare(f"hinted solve, median of {len(FIELDS)} fields", statistics.median(ours_t),
                statistics.median(peer_t), "solve-field on image")
        print(f"   ours: {', '.join(f'{t:.2f}' for t in ours_t)} s; peer: {', '.join(f'{t:.2f}' for t in peer_t)} s; "
              f"largest WCS error vs truth {max(errors):.3f} px")
        if args.blind:
            path = folder / "field0.fits"
            start = time.perf_counter()
            blind = solve_image(render(make_wcs(*FIELDS[0], SCALE, SHAPE), rng), cpu_limit_s=300, timeout_s=900)
            print(f"   blind, ours: {time.perf_counter() - start:.1f} s ({'solved' if blind.solved else 'not solved'})")
            print(f"   blind, solve-field on image: {solve_field_on_image(path, None, 300):.1f} s")

        # A dithered sequence: +-0.05 deg, +-0.3 deg of field rotation, seeing 2.3-3.0 px.
        reference_truth = make_wcs(*FIELDS[0], SCALE, SHAPE)
        reference_image = render(reference_truth, rng)
        reference = solve_image(reference_image, SolveHints(*FIELDS[0], 1.0, SCALE), cpu_limit_s=30)
        ref_sources = extract_sources(reference_image, max_sources=300)
        ref_xy = np.column_stack([ref_sources["x_win"], ref_sources["y_win"]])
        match_t, total_t, worst = [], [], 0.0
        frames = []
        for _ in range(args.frames):
            truth = make_wcs(FIELDS[0][0] + rng.uniform(-0.05, 0.05), FIELDS[0][1] + rng.uniform(-0.05, 0.05),
                             SCALE, SHAPE, rotation_deg=rng.uniform(-0.3, 0.3))
            frames.append((truth, render(truth, rng)))
        for truth, image in frames:
            start = time.perf_counter()
            sources = extract_sources(image, max_sources=300)
            propagated = propagate_wcs(reference.wcs, ref_xy, np.column_stack([sources["x_win"], sources["y_win"]]))
            total_t.append(time.perf_counter() - start)
            match_t.append(propagated.seconds)
            worst = max(worst, max_error(propagated.wcs, truth))
        peer_frames = []
        for k, (_, image) in enumerate(frames[:3]):
            path = write_frame(folder / f"seq{k}.fits", image, dtype=np.uint16)
            peer_frames.append(solve_field_on_image(path, SolveHints(*FIELDS[0], 1.0, SCALE), 30))
        compare("per frame: extraction + propagation", statistics.median(total_t), statistics.median(peer_frames),
                "hinted solve-field")
        compare("per frame: match + WCS composition only", statistics.median(match_t),
                statistics.median(peer_frames), "hinted solve-field")
        print(f"   {args.frames} frames, slowest extraction + propagation {max(total_t):.3f} s; "
              f"largest propagated WCS error vs truth {worst:.3f} px")


if __name__ == "__main__":
    main()
