"""``movers`` sub-command: moving objects and streaks in a folder of aligned frames.

``datas-pipeline movers DIR --json OUT.json [--report DIR] [--mpc FILE] [--ades FILE]``.
Progress goes to stderr; bad input ends with one line and exit status 2.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datas_pipeline.cli.arguments import positive_float, positive_int
from datas_pipeline.cli.output import check_writable, write_json
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import is_fits_path, read_header
from datas_pipeline.io.headers import header_celestial_wcs
from datas_pipeline.movers.tracking import TrackThresholds


def frame_paths(inputs: list[str]) -> list[Path]:
    """FITS files named, or found (sorted by name) in the folders named."""
    paths: list[Path] = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            paths.extend(sorted(p for p in path.iterdir() if p.is_file() and is_fits_path(p)))
        elif path.is_file():
            paths.append(path)
        else:
            raise PipelineError(f"{path}: no such file or folder")
    if not paths:
        raise PipelineError(f"no FITS frames in {', '.join(inputs)}")
    return paths



class _Progress:
    def __init__(self, quiet: bool):
        self.quiet, self.bar, self.stage = quiet, None, None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self.quiet:
            return
        from tqdm import tqdm

        if stage != self.stage:
            if self.bar is not None:
                self.bar.close()
            self.bar, self.stage = tqdm(total=total, desc=stage, file=sys.stderr, leave=False), stage
        self.bar.n = done
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_movers(args: argparse.Namespace) -> int:
    from datas_pipeline.movers.output import result_json
    from datas_pipeline.movers.search import MoverOptions, find_movers
    from datas_pipeline.movers.submission import Observatory, ades_psv, ades_xml, mpc_report

    paths = frame_paths(args.inputs)
    site = Observatory(code=args.code.upper(), longitude_deg=args.longitude, latitude_deg=args.latitude,
                       altitude_m=args.altitude, observers=tuple(args.observer or ()),
                       measurers=tuple(args.observer or ()), ast_cat=args.ast_cat, zeropoint=args.zeropoint,
                       detector=args.detector)
    if args.mpc or args.ades:
        site.check()
    report_page = Path(args.report) / "index.html" if args.report else None
    check_writable(args.json, args.mpc, args.ades, report_page)
    wcs = header_celestial_wcs(read_header(args.wcs or paths[0]))
    if (args.mpc or args.ades) and wcs is None:
        raise PipelineError("MPC and ADES files need sky positions: the frames have no WCS (solve one and "
                            "pass it with --wcs FILE)")
    options = MoverOptions(fwhm_px=args.fwhm, workers=args.workers, max_rate=args.max_rate,
                           thresholds=TrackThresholds(score=args.threshold))
    tuned = None
    if args.autotune:
        from dataclasses import replace

        from datas_pipeline.movers.autotune import autotune

        if not args.quiet:
            print("auto-tune: injecting movers into a crop of the frames ...", file=sys.stderr)
        tuned = autotune([str(p) for p in paths], options=options, fwhm_px=args.fwhm)
        options = replace(options, thresholds=tuned.thresholds)
        best = next(row for row in tuned.curve if row["score"] == tuned.thresholds.score)
        print(f"auto-tune: score threshold {tuned.thresholds.score:g} (recall {best['recall']:.0%} of "
              f"{tuned.injected} injected, {best['false_tracks']} other tracks in the crop)", file=sys.stderr)
    progress = _Progress(args.quiet)
    scratch = None
    try:
        if args.register:
            import tempfile

            from datas_pipeline.movers.prepare import register_raw

            scratch = tempfile.TemporaryDirectory(prefix="datas-movers-aligned-")
            aligned, registration, defects = register_raw([str(p) for p in paths], args.aligned_dir or scratch.name,
                                                          progress=progress)
            refused = [r for r in registration if not r["accepted"]]
            print(f"registered {len(aligned)} of {len(paths)} frames ({int(defects.sum())} detector defects "
                  f"repaired first)" + (f"; refused: {', '.join(r['file'] for r in refused)}" if refused else ""),
                  file=sys.stderr)
            paths = aligned
        result = find_movers([str(p) for p in paths], wcs=wcs, options=options, progress=progress)
    finally:
        progress.close()
        if scratch is not None and args.report is None:
            scratch.cleanup()
    record = result_json(result, wcs)
    if tuned is not None:
        record["parameters"]["autotune"] = tuned.as_dict()
    write_json(args.json, record)
    movers = sum(t["kind"] == "mover" for t in record["tracks"])
    print(f"{movers} movers and {len(result.streaks)} streaks in {len(paths)} frames "
          f"({result.timings['total']:.1f} s)", file=sys.stderr)
    if args.report:
        from datas_pipeline.movers.report import write_report

        page = write_report(args.report, result, [str(p) for p in paths])
        print(f"report: {page}", file=sys.stderr)
        if scratch is not None:
            scratch.cleanup()
    if args.mpc:
        Path(args.mpc).write_text(mpc_report(record["tracks"], site))
    if args.ades:
        text = ades_xml(record["tracks"], site) if str(args.ades).endswith(".xml") else ades_psv(record["tracks"], site)
        Path(args.ades).write_text(text)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``movers`` sub-command."""
    p = subparsers.add_parser("movers", help="find moving objects and streaks in aligned frames")
    p.add_argument("inputs", nargs="+", metavar="DIR", help="folder(s) of aligned frames, or the frames (FITS)")
    p.add_argument("--json", help="write the tracks, frames and parameters to FILE (- for stdout)")
    p.add_argument("--report", help="folder for the HTML report (index.html) and GIFs")
    p.add_argument("--mpc", help="write MPC 80-column observations to FILE")
    p.add_argument("--ades", help="write ADES observations to FILE (.xml for XML, else PSV)")
    p.add_argument("--wcs", help="FITS file whose header holds the sequence's WCS (default: the first frame's)")
    p.add_argument("--code", default="XXX", help="MPC observatory code (XXX with --longitude/--latitude)")
    p.add_argument("--longitude", type=float, help="site longitude (deg, east positive) for XXX")
    p.add_argument("--latitude", type=float, help="site latitude (deg) for XXX")
    p.add_argument("--altitude", type=float, help="site altitude (m) for XXX")
    p.add_argument("--observer", action="append", help="observer name (repeat for several)")
    p.add_argument("--ast-cat", default="Gaia3", help="astrometric catalogue of the WCS solution (ADES astCat)")
    p.add_argument("--zeropoint", type=float, help="magnitude zero point: mag = instrumental + this")
    p.add_argument("--detector", default="CCD", choices=("CCD", "CMO"))
    p.add_argument("--fwhm", type=positive_float, help="PSF FWHM (px); measured when omitted")
    p.add_argument("--threshold", type=positive_float, default=TrackThresholds.score,
                   help=f"track score threshold (SNR, default {TrackThresholds.score:g})")
    p.add_argument("--max-rate", type=positive_float, default=12.0, help="fastest synthetic-tracking rate (px/frame)")
    p.add_argument("--register", action="store_true",
                   help="the frames are raw: repair detector defects, then register them on the middle frame")
    p.add_argument("--aligned-dir", help="with --register, keep the aligned frames in this folder")
    p.add_argument("--autotune", action="store_true",
                   help="choose the threshold by injecting movers into a crop of these frames")
    p.add_argument("--workers", type=positive_int, default=1, help="processes for the velocity grid")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_movers)
