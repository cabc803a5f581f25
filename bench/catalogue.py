"""Cataloguing a share: header-only files/s, a night with propagated astrometry, and the
seed's way (one hinted solve-field per frame) as the baseline.

Builds a throwaway database (migrated like production) and a synthetic share in a
temporary folder:

* 10,000 small frames (64x64, real capture-program headers: lights of 100 pointings with a
  WCS, darks, flats, biases) catalogued with ``--solve never`` (header-only: each file read
  once, hashed, its header parsed, classified, stored; WCS centres from the headers): files/s
  on one core. Goal: >= 500 files/s.
* a night of 300 lights (256x256, real Tycho-2 skies, 10 pointings of 30 frames; the first
  of each pointing carries a WCS, the rest none) catalogued with ``--solve missing``: header
  WCS checked against Tycho-2, the rest propagated along each pointing, all graded.
  Goal: < 2 minutes.
* the baseline: hinted solve-field on a few 1024x1024 frames (7"/px, 2 degree fields, as in
  bench/solve.py); its median time per frame, extrapolated to the 10,000 frames (and the 300),
  gives the ratio. The extrapolation is said as such in the output.

Run: DATABASE_URL=postgres://... python bench/catalogue.py [--frames 10000] [--night 300] [--solves 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "network.settings")

import numpy as np  # noqa: E402
from _common import compare, header, tool_version  # noqa: E402
from astropy.io import fits  # noqa: E402
from datas_pipeline.synthetic.fields import make_wcs  # noqa: E402

START = datetime(2025, 12, 1, 20, 0, tzinfo=UTC)
SMALL = (64, 64)


def _capture_header(kind: str, when: datetime, exposure: float, **cards) -> fits.Header:
    header = fits.Header()
    values = {"SIMPLE": True, "BITPIX": 16, "NAXIS": 2, "NAXIS1": SMALL[1], "NAXIS2": SMALL[0], "BZERO": 32768,
              "BSCALE": 1, "IMAGETYP": kind, "DATE-OBS": when.strftime("%Y-%m-%dT%H:%M:%S"), "EXPTIME": exposure,
              "INSTRUME": "ZWO ASI2600MM Pro", "XBINNING": 1, "YBINNING": 1, "GAIN": 100, "OFFSET": 50,
              "CCD-TEMP": -10.0, "SET-TEMP": -10.0, "XPIXSZ": 3.76, "FOCALLEN": 530.0, "TELESCOP": "Bench 106",
              "SITELAT": 45.0, "SITELONG": 7.0, "SWCREATE": "N.I.N.A. 3.1"}
    values.update(cards)
    for key, value in values.items():
        header[key] = value
    return header


def write_small_share(root: Path, n: int, seed: int = 1) -> None:
    """``n`` 64x64 frames: 80 % lights over 100 pointings (header WCS), the rest calibration."""
    rng = np.random.default_rng(seed)
    pixels = (rng.normal(1000, 20, SMALL).astype(np.int32) - 32768).astype(">i2").tobytes()
    pad = b"\0" * (-len(pixels) % 2880)
    lights = int(n * 0.8)
    pointings = [(rng.uniform(0, 360), float(np.degrees(np.arcsin(rng.uniform(-0.5, 0.95))))) for _ in range(100)]
    for i in range(n):
        when = START + timedelta(seconds=30 * i)
        if i < lights:
            ra, dec = pointings[i % 100]
            wcs = make_wcs(ra, dec, 1.46, (6248, 4176), rotation_deg=float(rng.uniform(-1, 1)))
            cards = {"FILTER": "LRGB"[i % 4], "OBJECT": f"Target {i % 100}", "RA": ra, "DEC": dec,
                     **dict(wcs.to_header())}
            head = _capture_header("LIGHT", when, 300.0, **cards)
            path = root / f"night{i // 2000:02d}" / f"T{i % 100:03d}" / f"Light_{i:05d}.fits"
        else:
            kind = ("DARK", "FLAT", "BIAS")[i % 3]
            head = _capture_header(kind, when, {"DARK": 300.0, "FLAT": 1.5, "BIAS": 0.0}[kind],
                                   **({"FILTER": "LRGB"[i % 4]} if kind == "FLAT" else {}))
            path = root / "calibration" / kind.lower() / f"{kind}_{i:05d}.fit"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(head.tostring().encode("ascii") + pixels + pad)


def write_night(root: Path, n: int, seed: int = 2) -> None:
    """``n`` 256x256 lights of real Tycho-2 skies: 10 pointings, the first frame of each with a WCS."""
    from datas_pipeline.synthetic.fields import catalog_stars, expose, sky_image

    from tests.observations.archive.share import FLUX_AT_MAG0, _sky

    rng = np.random.default_rng(seed)
    shape, scale = (256, 256), 10.0
    per = max(1, n // 10)
    fields = [(56.75 + 0.7 * (k % 2), 24.12 + 0.7 * (k // 2 - 2)) for k in range(10)]
    skies = {}
    for i in range(n):
        k = min(i // per, 9)
        ra, dec = fields[k]
        sky = skies.setdefault(k, _sky((ra, dec), k))
        wcs = make_wcs(ra + rng.normal(0, 0.003), dec + rng.normal(0, 0.003), scale, shape)
        stars = catalog_stars(wcs, shape, sky, flux_at_mag0=FLUX_AT_MAG0)
        data = expose(sky_image(shape, stars, sky=300.0, fwhm=3.0), rng, sky=0.0, read_noise=3.0) + 500
        cards = {"FILTER": "L", "OBJECT": "wrong name", "RA": ra, "DEC": dec, "XPIXSZ": 3.76,
                 "FOCALLEN": 206.264806 * 3.76 / scale}
        if i % per == 0:
            cards.update(dict(wcs.to_header()))
        head = _capture_header("LIGHT", START + timedelta(seconds=130 * i), 120.0, **cards)
        for key in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "BZERO", "BSCALE"):
            del head[key]
        path = root / f"P{k:02d}" / f"light_{i:04d}.fits"
        path.parent.mkdir(parents=True, exist_ok=True)
        fits.PrimaryHDU(np.clip(data, 0, 65535).astype(np.uint16), header=head).writeto(path)


def solve_field_seconds(count: int) -> list[float]:
    """Hinted solve-field on ``count`` 1024x1024 frames (bench/solve.py's fields), seconds each."""
    from datas_pipeline.astrometry.solve import SolveHints, solve_image

    from bench.solve import FIELDS, SCALE, SHAPE, render

    rng = np.random.default_rng(3)
    times = []
    for k in range(count):
        ra, dec = FIELDS[k % len(FIELDS)]
        truth = make_wcs(ra, dec, SCALE, SHAPE, rotation_deg=15.0)
        image = render(truth, rng)
        hints = SolveHints(ra_deg=ra + 0.2, dec_deg=dec - 0.1, radius_deg=2.0, scale_arcsec=SCALE)
        started = time.perf_counter()
        result = solve_image(image, hints, cpu_limit_s=60)
        times.append(time.perf_counter() - started)
        print(f"   solve-field frame {k + 1}: {times[-1]:.2f} s ({'solved' if result.solved else result.message})")
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=10_000, help="frames of the header-only share")
    parser.add_argument("--night", type=int, default=300, help="lights of the night with propagated astrometry")
    parser.add_argument("--solves", type=int, default=3, help="solve-field runs measured for the baseline")
    args = parser.parse_args()
    if not (os.environ.get("DATABASE_URL") or "").startswith("postgres"):
        print("bench/catalogue.py needs PostgreSQL with q3c: set DATABASE_URL=postgres://...", file=sys.stderr)
        return 2
    import django

    django.setup()
    from django.db import connection

    from observations.archive.catalogue import archive_network, catalogue_paths

    header("catalogue a share")
    print(f"   {tool_version(['solve-field', '--version'])} (solve-field)")
    test_db = connection.creation.create_test_db(verbosity=0, autoclobber=True, keepdb=False)
    try:
        with tempfile.TemporaryDirectory(prefix="datas-bench-share-") as tmp:
            root = Path(tmp)
            started = time.perf_counter()
            write_small_share(root / "small", args.frames)
            print(f"   wrote {args.frames} frames in {time.perf_counter() - started:.1f} s")
            cpu = time.process_time()
            summary = catalogue_paths([root / "small"], archive_network("bench-headers"), solve="never")
            cpu = time.process_time() - cpu
            assert summary.new == args.frames and not summary.bad, summary.as_dict()
            rate = summary.files / summary.seconds
            print(f"   header-only: {summary.files} files in {summary.seconds:.2f} s wall = {rate:.0f} files/s "
                  f"(goal >= 500/s); {cpu:.2f} s of this process's CPU = {summary.files / cpu:.0f} files/s per "
                  f"core, PostgreSQL's share not counted: {dict(summary.kinds)}")
            print(f"   load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
            again = catalogue_paths([root / "small"], archive_network("bench-headers"), solve="never")
            print(f"   re-scan (nothing new): {again.files} files in {again.seconds:.2f} s = "
                  f"{again.files / again.seconds:.0f} files/s")
            write_night(root / "night", args.night)
            night = catalogue_paths([root / "night"], archive_network("bench-night"), solve="missing")
            print(f"   night of {args.night} lights, header WCS checked + propagated + graded: {night.seconds:.1f} s "
                  f"on one core ({dict(night.astrometry)}; goal < 120 s)")
        solves = solve_field_seconds(args.solves)
        per_solve = statistics.median(solves)
        print(f"   solve-field median {per_solve:.2f} s per hinted solve over {len(solves)} runs; the figures below "
              f"EXTRAPOLATE it to every frame (the seed's way: one solve per frame)")
        compare(f"{args.frames} frames, header-only vs 1 solve each", summary.seconds, per_solve * args.frames,
                "solve-field (extrapolated)")
        compare(f"{args.night}-light night, propagated vs 1 solve each", night.seconds, per_solve * args.night,
                "solve-field (extrapolated)")
    finally:
        connection.creation.destroy_test_db(test_db, verbosity=0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
