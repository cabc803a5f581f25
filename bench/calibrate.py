"""Masters and calibration of 25 lights: datas_pipeline.calibration.masters vs ccdproc, same files, same numbers.

10 bias, 10 darks (120 s), 10 flats and 25 lights (60 s) of a simulated 1024x1024 camera
with overscan are written as 16-bit FITS. Each side reads them, builds the three masters
with the same sigma clipping (ccdproc.combine's: one pass, mean and standard deviation),
calibrates the lights (overscan, trim, bias, dark scaled 120 -> 60 s, flat) and writes them.
Run: python bench/calibrate.py [--size 1024] [--lights 25]
"""
from __future__ import annotations

import argparse
import tempfile
import warnings
from pathlib import Path

import numpy as np
from _common import compare, header, timed
from astropy.io import fits
from datas_pipeline.calibration.batch import calibrate_files
from datas_pipeline.calibration.masters import (
    CCDPROC_SIGMA_CLIP,
    CombineSettings,
    Sections,
    build_master_bias,
    build_master_dark,
    build_master_flat,
    calibrate_frame,
)
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.parallel import resolve_jobs
from datas_pipeline.synthetic.fields import make_detector, random_stars, read_out, sky_image

DARK_S, LIGHT_S, FLAT_S = 120.0, 60.0, 2.0


def make_night(folder: Path, size: int, n_lights: int) -> tuple[dict[str, list[Path]], dict]:
    rng = np.random.default_rng(7)
    detector = make_detector((size, size), rng, overscan_columns=20)
    sections = detector.sections()
    photons = sky_image(detector.shape, random_stars(detector.shape, 800, rng, margin=5), sky=400.0)
    plan = {"bias": (0.0, 0.0, 10, "BIAS"), "dark": (DARK_S, 0.0, 10, "DARK"),
            "flat": (FLAT_S, 25000.0, 10, "FLAT"), "light": (LIGHT_S, photons, n_lights, "LIGHT")}
    files: dict[str, list[Path]] = {}
    for kind, (exposure, light, n, imagetyp) in plan.items():
        head = fits.Header({"IMAGETYP": imagetyp, "EXPTIME": exposure, **sections})
        files[kind] = [write_frame(folder / kind / f"{kind}_{i:02d}.fits", read_out(detector, light, exposure, rng),
                                   head, dtype=np.uint16) for i in range(n)]
    return files, sections


def ours(files, out: Path, settings: CombineSettings, jobs: int = 1) -> Path:
    """Masters and lights on ``jobs`` threads (one job: all in this thread)."""
    sections = Sections.from_header(fits.getheader(files["light"][0]))
    bias = build_master_bias(files["bias"], sections, settings, threads=jobs)
    dark = build_master_dark(files["dark"], bias, sections, settings, threads=jobs)
    flat = build_master_flat(files["flat"], bias, dark, sections, settings, threads=jobs)
    if jobs > 1:
        for _ in calibrate_files(files["light"], out, bias, dark, flat, sections, jobs):
            pass
        return out
    for path in files["light"]:
        result = calibrate_frame(read_frame(path), bias, dark, flat, sections)
        write_frame(out / path.name, result.data, result.header, overwrite=True)
    return out


def with_ccdproc(files, out: Path, sections: dict) -> Path:
    import astropy.units as u
    import ccdproc
    from astropy.nddata import CCDData

    oscan, trim = sections["BIASSEC"], sections["TRIMSEC"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        def process(path, **kw):
            return ccdproc.ccd_process(CCDData.read(path, unit="adu"), oscan=oscan, trim=trim, oscan_median=True, **kw)

        bias = ccdproc.combine([process(p) for p in files["bias"]], method="average", sigma_clip=True)
        dark = ccdproc.combine([process(p, master_bias=bias) for p in files["dark"]], method="average",
                               sigma_clip=True)
        flats = [process(p, master_bias=bias, dark_frame=dark, dark_exposure=DARK_S * u.s,
                         data_exposure=FLAT_S * u.s, dark_scale=True) for p in files["flat"]]
        flat = ccdproc.combine(flats, method="average", sigma_clip=True, scale=lambda a: 1.0 / np.median(a))
        for path in files["light"]:
            result = process(path, master_bias=bias, dark_frame=dark, master_flat=flat,
                             dark_exposure=DARK_S * u.s, data_exposure=LIGHT_S * u.s, dark_scale=True)
            result.write(out / path.name, overwrite=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--lights", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="threads (default: DATAS_WORKERS, else the cores)")
    args = parser.parse_args()
    jobs = resolve_jobs(args.jobs)
    import ccdproc

    header(f"calibration: 3 masters from 30 frames + {args.lights} lights at {args.size}x{args.size}")
    print(f"   peer: ccdproc {ccdproc.__version__}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        files, sections = make_night(folder, args.size, args.lights)
        (folder / "ours").mkdir()
        (folder / "ccdproc").mkdir()
        (folder / "robust").mkdir()
        t_ours, first_ours, _ = timed(lambda: ours(files, folder / "ours", CCDPROC_SIGMA_CLIP), args.repeats)
        t_peer, first_peer, _ = timed(lambda: with_ccdproc(files, folder / "ccdproc", sections), args.repeats)
        t_robust, _, _ = timed(lambda: ours(files, folder / "robust", CombineSettings(), jobs), args.repeats)
        (folder / "parallel").mkdir()
        t_par, _, _ = timed(lambda: ours(files, folder / "parallel", CCDPROC_SIGMA_CLIP, jobs), args.repeats)
        compare("same clipping as ccdproc.combine, serial", t_ours, t_peer, "ccdproc")
        compare(f"same clipping, {jobs} jobs", t_par, t_peer, "ccdproc")
        print(f"   {jobs} jobs / serial: {t_ours / t_par:.2f}x (masters and lights on {jobs} threads)")
        compare(f"ours robust (median/MAD, 3 passes), {jobs} jobs", t_robust, t_peer, "ccdproc")
        same = all(np.array_equal(fits.getdata(folder / "ours" / p.name), fits.getdata(folder / "parallel" / p.name))
                   for p in files["light"])
        print(f"   parallel lights {'identical' if same else 'DIFFERENT'} to serial")
        worst = 0.0
        for path in files["light"]:
            a = fits.getdata(folder / "ours" / path.name).astype(np.float64)
            b = fits.getdata(folder / "ccdproc" / path.name).astype(np.float64)
            worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), np.median(np.abs(b))))))
        print(f"   first runs: ours {first_ours:.2f} s, ccdproc {first_peer:.2f} s; "
              f"largest relative difference over {len(files['light'])} lights: {worst:.2e}")


if __name__ == "__main__":
    main()
