"""Extraction + aperture photometry: datas_pipeline.detection.extract vs the source-extractor program.

Both read the same FITS file and produce a catalogue with positions, aperture and Kron
fluxes; ours also fits a Moffat FWHM. The catalogues are compared (matched fraction,
median aperture-flux ratio). source-extractor runs with NTHREADS 1, its default (Debian's
build took as long with 2: 1.76 against 1.67 s at 4096²); ours serially, then on the worker
pool. Besides wall times, the CPU time of the serial runs (ours: process time; the peer: its
children's rusage) is printed: it does not depend on the load of a shared machine.
Run: python bench/extract.py [--sizes 1024 4096]
"""
from __future__ import annotations

import argparse
import resource
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
from _common import compare, header, timed, tool_version
from astropy.io import fits
from datas_pipeline.detection.bands import BAND_ROWS
from datas_pipeline.detection.extract import BAND_MIN_PIXELS, extract_sources
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.parallel import resolve_jobs, worker_pool
from datas_pipeline.synthetic.fields import expose, random_stars, render_stars

APERTURE_RADIUS = 5.0
# What ours measures in full mode, and in fast mode (no Kron, half-light radius, windowed centroid).
FULL_PARAMS = ["X_IMAGE", "Y_IMAGE", "XWIN_IMAGE", "YWIN_IMAGE", "FLUX_APER", "FLUXERR_APER", "FLUX_AUTO",
               "FLUXERR_AUTO", "KRON_RADIUS", "FLUX_RADIUS", "FWHM_IMAGE", "A_IMAGE", "B_IMAGE", "THETA_IMAGE",
               "FLAGS"]
FAST_PARAMS = ["X_IMAGE", "Y_IMAGE", "FLUX_APER", "FLUXERR_APER", "FWHM_IMAGE", "A_IMAGE", "B_IMAGE",
               "THETA_IMAGE", "FLAGS"]


def make_frame(size: int, folder: Path) -> Path:
    rng = np.random.default_rng(size)
    n_stars = int(2000 * (size / 1024) ** 2)
    stars = random_stars((size, size), n_stars, rng, flux_range=(1e3, 3e5), margin=5)
    image = expose(render_stars((size, size), stars, fwhm=3.2), rng, sky=300.0, bias=500.0)
    return write_frame(folder / f"field_{size}.fits", image, dtype=np.uint16)


def source_extractor(path: Path, folder: Path, names: list[str]) -> Path:
    params = folder / "bench.param"
    params.write_text("\n".join(names) + "\n")
    catalog = folder / "sex.cat"
    subprocess.run(
        ["source-extractor", str(path), "-c", "/usr/share/source-extractor/default.sex",
         "-PARAMETERS_NAME", str(params), "-FILTER_NAME", "/usr/share/source-extractor/default.conv",
         "-STARNNW_NAME", "/usr/share/source-extractor/default.nnw", "-DETECT_THRESH", "5",
         "-ANALYSIS_THRESH", "5", "-DETECT_MINAREA", "5", "-PHOT_APERTURES", str(2 * APERTURE_RADIUS),
         "-CATALOG_NAME", str(catalog), "-CATALOG_TYPE", "FITS_LDAC", "-VERBOSE_TYPE", "QUIET",
         "-SATUR_LEVEL", "65000", "-MEMORY_PIXSTACK", "3000000", "-MEMORY_OBJSTACK", "30000", "-NTHREADS", "1"],
        check=True, capture_output=True,
    )
    return catalog


def ours(path: Path, fast: bool = False, pool=None) -> np.ndarray:
    return extract_sources(read_frame(path).data, noise="global", aperture_radius=APERTURE_RADIUS, fast=fast,
                           pool=pool)


def cpu_seconds(function, repeats: int, children: bool = False) -> float:
    """Mean CPU seconds of ``function`` (this process, or its child processes)."""
    def now() -> float:
        if not children:
            return time.process_time()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    start = now()
    for _ in range(repeats):
        function()
    return (now() - start) / repeats


def agreement(table: np.ndarray, catalog: Path) -> str:
    """How many of our sources lie within 0.1 px of a SExtractor source, and the flux ratio."""
    ref = fits.getdata(catalog, 2)
    rx, ry = ref["X_IMAGE"] - 1, ref["Y_IMAGE"] - 1
    order = np.argsort(ry)
    j = np.searchsorted(ry[order], table["y"])
    best = np.full(len(table), np.inf)
    match = np.zeros(len(table), dtype=int)
    for shift in range(-8, 9):  # nearest neighbour among the sources a few rows away
        k = order[np.clip(j + shift, 0, len(ref) - 1)]
        d = np.hypot(rx[k] - table["x"], ry[k] - table["y"])
        better = d < best
        best[better], match[better] = d[better], k[better]
    matched = best < 0.1
    ratio = np.median(table["flux"][matched] / ref["FLUX_APER"][match[matched]])
    return (f"{len(ref)} SExtractor sources, {len(table)} ours, {matched.sum()} within 0.1 px "
            f"({100 * matched.mean():.2f} %), median FLUX_APER ratio {ratio:.6f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 4096])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--jobs", type=int, help="worker processes (default: DATAS_WORKERS, else the cores)")
    args = parser.parse_args()
    header("extraction + aperture photometry")
    print(f"   peer: {tool_version(['source-extractor', '--version'])}")
    jobs = resolve_jobs(args.jobs)
    print(f"   parallel: {jobs} worker processes, started once before timing (the caller owns the pool); "
          f"frames of {BAND_MIN_PIXELS ** 0.5:.0f}^2 and more are detected in row bands of at most {BAND_ROWS} "
          f"rows (the same bands serially) and measured in parts; smaller ones stay in process")
    with tempfile.TemporaryDirectory() as tmp, worker_pool(jobs) as pool:
        folder = Path(tmp)
        for size in args.sizes:
            path = make_frame(size, folder)
            for mode, names in (("full", FULL_PARAMS), ("fast", FAST_PARAMS)):
                fast = mode == "fast"
                # Interleaved, so load on the shared machine hits each alike.
                t_ours, first_ours, table = timed(lambda p=path, f=fast: ours(p, f), args.repeats)
                t_peer, first_peer, catalog = timed(lambda p=path, n=names: source_extractor(p, folder, n),
                                                    args.repeats)
                t_par, _, table_par = timed(lambda p=path, f=fast: ours(p, f, pool), args.repeats)
                cpu_ours = cpu_seconds(lambda p=path, f=fast: ours(p, f), args.repeats)
                cpu_peer = cpu_seconds(lambda p=path, n=names: source_extractor(p, folder, n), args.repeats, True)
                label = f"{size}x{size} {mode} ({len(names)} columns)"
                compare(label + " serial", t_ours, t_peer, "source-extractor")
                compare(label + f" {jobs} jobs", t_par, t_peer, "source-extractor")
                compare(label + " serial, CPU", cpu_ours, cpu_peer, "source-extractor", unit="s CPU")
                print(f"   {jobs} jobs / serial: {t_ours / t_par:.2f}x")
                same = all(np.array_equal(table[n], table_par[n], equal_nan=True) for n in table.dtype.names)
                print(f"   first runs: ours {first_ours:.3f} s, peer {first_peer:.3f} s; {agreement(table, catalog)}; "
                      f"parallel catalogue {'identical' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
