"""``register``, ``stack``, ``color``, ``stretch`` and ``livestack`` sub-commands.

Progress bars go to stderr, results to files; ``--json FILE`` (``-`` for stdout) gives
scripts a machine-readable record. Bad input ends with a one-line error and exit status 2
(:mod:`datas_pipeline.cli.main`); a frame that is read but refused is a result, not an error.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from datas_pipeline.cli.arguments import add_jobs_argument, non_negative_float, positive_int
from datas_pipeline.cli.output import check_writable, jsonable, open_stream, write_json
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import read_frame, read_header, write_frame


def _mono(path: Path) -> tuple[np.ndarray, object]:
    from datas_pipeline.registration.batch import read_mono

    return read_mono(path)


# -- register ---------------------------------------------------------------------------------
def run_register(args: argparse.Namespace) -> int:
    from datas_pipeline.parallel import jobs_for_files
    from datas_pipeline.registration.batch import BatchSettings, register_files
    from datas_pipeline.registration.register import RegistrationGates, prepare_reference

    ref_data, _ = _mono(Path(args.reference))
    gates = RegistrationGates(
        min_inliers=args.min_inliers, max_rms_px=args.max_rms, max_scale_change=args.max_scale_change,
        max_rotation_deg=args.max_rotation, allow_flip=not args.no_flip,
    )
    reference = prepare_reference(ref_data)
    need = max(3, args.min_inliers)
    if len(reference.stars) < need:
        # Every frame would be refused for the same reason: say it once.
        raise PipelineError(f"{args.reference}: only {len(reference.stars)} stars found in the reference "
                            f"(need {need}); choose a frame with clear sky and good focus")
    out_dir = Path(args.out)
    check_writable(out_dir / f"{args.prefix}.probe", args.json)
    settings = BatchSettings(Path(args.reference).name, out_dir, args.kind, args.order, args.kernel, args.prefix,
                             gates)
    paths = [Path(name) for name in args.files]
    records, unreadable = [], 0
    jobs = jobs_for_files(paths, args.jobs)
    for record in tqdm(register_files(reference, paths, settings, jobs), total=len(paths), desc="register",
                       unit="frame", file=sys.stderr, disable=args.quiet):
        unreadable += bool(record.pop("unreadable", False))
        records.append(_clean(record))
    accepted = sum(r["accepted"] for r in records)
    print(f"registered {accepted} of {len(records)} frames on {args.reference}; "
          f"{len(records) - accepted} refused", file=sys.stderr)
    write_json(args.json, records)
    return 1 if unreadable else 0


def _clean(record: dict) -> dict:
    """Floats rounded and NaN as None, for JSON."""
    out = {}
    for key, value in record.items():
        if isinstance(value, float):
            out[key] = None if not np.isfinite(value) else round(value, 6)
        else:
            out[key] = value
    return out


# -- stack ------------------------------------------------------------------------------------
def run_stack(args: argparse.Namespace) -> int:
    from datas_pipeline.parallel import resolve_jobs
    from datas_pipeline.stacking.combine import StackOptions, parse_memory, stack_frames, write_master

    groups: dict[str, list[Path]] = defaultdict(list)
    rows: dict[Path, int] = {}
    for name in args.files:
        path = Path(name)
        # The image HDU's header: a .fz frame keeps FILTER in its compressed extension.
        header = read_header(path)
        groups[str(header.get("FILTER", "")).strip()].append(path)
        rows[path] = int(header.get("NAXIS2", 0))
    options = StackOptions(method=args.method, low=args.low, high=args.high, normalization=args.normalization,
                           weights=args.weights, memory=parse_memory(args.memory))
    out = Path(args.out)
    check_writable(out, args.json)
    summary = []
    for filter_name, paths in sorted(groups.items()):
        target = out if len(groups) == 1 else out.with_name(f"{out.stem}_{filter_name or 'none'}{out.suffix}")
        with tqdm(total=rows[paths[0]], desc=f"stack {filter_name or ''}".strip(), unit="row", file=sys.stderr,
                  disable=args.quiet) as bar:
            # Stacking splits each band over threads (numpy's partitions release the GIL).
            result = stack_frames(paths, options, progress=bar.update, threads=resolve_jobs(args.jobs))
        write_master(target, result, overwrite=True)
        summary.append({"filter": filter_name, "output": str(target), "frames": len(paths),
                        "method": args.method, "bands": result.bands,
                        "rejected_fraction": result.header["STKREJFR"],
                        "weights": [round(s.weight, 6) for s in result.stats]})
        print(f"{target}: {args.method} of {len(paths)} frames"
              f"{' (' + filter_name + ')' if filter_name else ''}, {result.header['STKREJFR']:.4%} rejected",
              file=sys.stderr)
    write_json(args.json, summary)
    return 0


# -- color ------------------------------------------------------------------------------------
def run_color(args: argparse.Namespace) -> int:
    from datas_pipeline.display.color import combine_palette, combine_rgb, render_color

    check_writable(args.out, args.fits, args.json)

    def load(name):
        return _mono(Path(name))[0] if name else None

    if args.palette:
        channels = {k: load(v) for k, v in (("HA", args.ha), ("OIII", args.oiii), ("SII", args.sii)) if v}
        image = combine_palette(channels, args.palette, register=not args.no_register)
    else:
        missing = [flag for flag, value in (("--r", args.r), ("--g", args.g), ("--b", args.b)) if not value]
        if missing:
            raise PipelineError(f"colour needs {', '.join(missing)} (or --palette with --ha/--oiii/--sii)")
        image = combine_rgb(load(args.r), load(args.g), load(args.b), luminance=load(args.l),
                            register=not args.no_register, white_balance=not args.no_white_balance)
    path = render_color(image, args.out, bits=args.bits, max_size=args.max_size)
    if args.fits:
        write_frame(args.fits, image.rgb, overwrite=True)
    record = {"output": str(path), "white_balance": list(image.white_balance),
              "background": [float(v) for v in image.background],
              "registrations": {k: r.summary() for k, r in image.registrations.items()}}
    write_json(args.json, record)
    print(f"{path}: colour image, white balance R {image.white_balance[0]:.3f} B {image.white_balance[2]:.3f}",
          file=sys.stderr)
    return 0


# -- stretch ----------------------------------------------------------------------------------
def run_stretch(args: argparse.Namespace) -> int:
    from datas_pipeline.display.stretch import render

    check_writable(args.out)
    frame = read_frame(args.file)
    path = render(frame.data, args.out, stretch=args.method, bits=args.bits, max_size=args.max_size,
                  flip=not args.no_flip)
    print(f"{path}: {args.method} stretch, {args.bits}-bit", file=sys.stderr)
    return 0


# -- livestack --------------------------------------------------------------------------------
def run_livestack(args: argparse.Namespace) -> int:
    from datas_pipeline.stacking.live import LiveStacker, watch_folder

    stacker = LiveStacker(pixel_rejection_sigma=None if args.no_rejection else args.reject_sigma)
    reports = []
    check_writable(args.out, args.preview)
    stream = open_stream(args.json)
    try:
        for report in watch_folder(args.directory, stacker, poll_seconds=args.poll, idle_timeout=args.idle_timeout,
                                   once=args.once):
            reports.append(report)
            line = json.dumps(report.as_dict(), default=jsonable)
            if args.json == "-":
                print(line, flush=True)
            elif stream:
                stream.write(line + "\n")
                stream.flush()
            status = "stacked" if report.accepted else f"refused: {report.reason}"
            print(f"{Path(report.source).name}: {status} ({report.frames_stacked} in stack, "
                  f"SNR x{report.snr_gain:.2f})", file=sys.stderr)
            if report.accepted and args.preview:
                stacker.preview(args.preview, max_size=args.max_size)
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        if stream:
            stream.close()
    if stacker.image is None:
        raise PipelineError(f"no frame in {args.directory} could start a stack")
    if args.out:
        stacker.save(args.out)
    return 0


# -- parser -----------------------------------------------------------------------------------
def register(subparsers: argparse._SubParsersAction) -> None:
    """Add this group's sub-commands."""
    p = subparsers.add_parser("register", help="align frames on a reference by their stars")
    p.add_argument("reference", help="reference frame (FITS)")
    p.add_argument("files", nargs="+", help="frames to register (FITS)")
    p.add_argument("--out", required=True, help="directory for the registered frames")
    p.add_argument("--json", help="write per-frame results to FILE (- for stdout)")
    p.add_argument("--kind", default="similarity", choices=("shift", "similarity", "affine", "polynomial"))
    p.add_argument("--order", type=int, default=2, choices=(2, 3), help="polynomial order")
    p.add_argument("--kernel", default="lanczos3", choices=("lanczos3", "bicubic"))
    p.add_argument("--prefix", default="r_", help="output file name prefix (default r_)")
    p.add_argument("--min-inliers", type=positive_int, default=6)
    p.add_argument("--max-rms", type=float, default=0.7, help="largest residual rms (px)")
    p.add_argument("--max-scale-change", type=float, default=0.05)
    p.add_argument("--max-rotation", type=float, default=None, help="largest rotation (deg); default any")
    p.add_argument("--no-flip", action="store_true", help="refuse mirrored frames")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_jobs_argument(p)
    p.set_defaults(func=run_register)

    p = subparsers.add_parser("stack", help="stack registered frames into per-filter masters")
    p.add_argument("files", nargs="+", help="registered frames (FITS)")
    p.add_argument("--out", required=True, help="master FITS (per filter: NAME_<filter>.fits)")
    p.add_argument("--method", default="winsorized",
                   choices=("mean", "median", "sigma", "winsorized", "percentile", "minmax", "linear", "gesd"))
    p.add_argument("--low", type=non_negative_float, default=3.0, help="low rejection limit (sigma, fraction or count; gesd: largest outlier fraction)")
    p.add_argument("--high", type=non_negative_float, default=3.0, help="high rejection limit (gesd: significance, e.g. 0.05)")
    p.add_argument("--normalization", default="additive",
                   choices=("none", "additive", "multiplicative", "additive_scale"))
    p.add_argument("--weights", default="none", choices=("none", "noise", "fwhm"))
    p.add_argument("--memory", default="2GB", help="memory budget, e.g. 2GB or 512MB")
    p.add_argument("--json", help="write a summary to FILE (- for stdout)")
    p.add_argument("--quiet", action="store_true")
    add_jobs_argument(p)
    p.set_defaults(func=run_stack)

    p = subparsers.add_parser("color", help="combine filter masters into a colour image")
    for flag, text in (("--r", "red"), ("--g", "green"), ("--b", "blue"), ("--l", "luminance"),
                       ("--ha", "H-alpha"), ("--oiii", "[O III]"), ("--sii", "[S II]")):
        p.add_argument(flag, help=f"{text} master (FITS)")
    p.add_argument("--palette", choices=("SHO", "HOO", "HSO"), help="narrowband palette")
    p.add_argument("--out", required=True, help="PNG, JPEG or TIFF")
    p.add_argument("--fits", help="also write the linear RGB planes to this FITS file")
    p.add_argument("--bits", type=int, default=8, choices=(8, 16))
    p.add_argument("--max-size", type=positive_int, help="thumbnail: longest side in px")
    p.add_argument("--no-register", action="store_true", help="masters are already on one grid")
    p.add_argument("--no-white-balance", action="store_true")
    p.add_argument("--json", help="write what was done to FILE (- for stdout)")
    p.set_defaults(func=run_color)

    p = subparsers.add_parser("stretch", help="render a FITS image as a stretched preview")
    p.add_argument("file", help="FITS image (mono or 3 planes)")
    p.add_argument("--out", required=True, help="PNG, JPEG or TIFF")
    p.add_argument("--method", default="auto", choices=("auto", "asinh", "linear"))
    p.add_argument("--bits", type=int, default=8, choices=(8, 16))
    p.add_argument("--max-size", type=positive_int, help="thumbnail: longest side in px")
    p.add_argument("--no-flip", action="store_true", help="keep FITS row order (first row at the top)")
    p.set_defaults(func=run_stretch)

    p = subparsers.add_parser("livestack", help="stack frames live as they land in a folder")
    p.add_argument("directory", help="folder the camera writes FITS frames to")
    p.add_argument("--preview", help="PNG/JPEG preview refreshed after every stacked frame")
    p.add_argument("--out", help="write the stack (FITS) when the watch ends")
    p.add_argument("--once", action="store_true", help="stack the frames already there and stop")
    p.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without frames")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between folder checks")
    p.add_argument("--reject-sigma", type=float, default=5.0, help="pixel rejection (sigma)")
    p.add_argument("--no-rejection", action="store_true", help="plain running mean")
    p.add_argument("--max-size", type=positive_int, default=1024, help="preview longest side (px)")
    p.add_argument("--json", help="stream one JSON line per frame to FILE (- for stdout)")
    p.set_defaults(func=run_livestack)
