"""``datas-pipeline grade|calibrate|extract|photometry|solve``: frame science for a folder.

Each command writes JSON for scripts (``--json FILE``, or ``-`` for standard output) and a
short human summary on standard error. Bad input ends with ``error: ...`` and exit status 2
(raised as PipelineError, printed by pipeline/datas_pipeline/cli/main.py); a frame that could not be
solved exits 1.
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from datas_pipeline.cli.arguments import add_jobs_argument, positive_float, positive_int
from datas_pipeline.cli.extraction import add_extraction_arguments, extraction_settings
from datas_pipeline.cli.output import jsonable, write_json
from datas_pipeline.errors import PipelineError


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def _coordinate(kind: str):
    def parse(text: str) -> float:
        from datas_pipeline.io.headers import parse_angle

        try:
            value = parse_angle(text, hours=kind == "ra")
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a {kind.upper()} (degrees or sexagesimal)") from None
        if kind == "ra" and not 0 <= value < 360 or kind == "dec" and not -90 <= value <= 90:
            raise argparse.ArgumentTypeError(f"{text!r} is outside the valid {kind.upper()} range")
        return value % 360.0 if kind == "ra" else value
    return parse


# --- grade ------------------------------------------------------------------------------------


def _grade(args: argparse.Namespace) -> int:
    from datas_pipeline.detection.grading import GradingRules
    from datas_pipeline.workflows import grade_folder

    rules = GradingRules(max_fwhm_px=args.max_fwhm, max_eccentricity=args.max_eccentricity)
    session, failures = grade_folder(args.folder, rules, args.threshold, args.catalog, args.catalog_mag_limit,
                                     progress=True, jobs=args.jobs)
    if session is None:
        raise PipelineError(f"{args.folder}: none of the {len(failures)} files could be measured: "
                            + "; ".join(f"{f['file']}: {f['error']}" for f in failures[:3]))
    record = session.as_dict()
    record["errors"] = failures
    write_json(args.json, record)
    accepted = sum(1 for f in session.frames if f.accepted)
    _note(f"{accepted} of {len(session.frames)} frames accepted; best: {record['best']}")
    for frame in session.frames:
        if not frame.accepted:
            _note(f"  rejected {frame.quality.file}: {'; '.join(frame.reasons)}")
    for failure in failures:
        _note(f"  skipped {failure['file']}: {failure['error']}")
    return 0


# --- calibrate --------------------------------------------------------------------------------


def _calibrate(args: argparse.Namespace) -> int:
    from datas_pipeline.calibration.match import MatchRules
    from datas_pipeline.workflows import calibrate_folder

    rules = MatchRules(temperature_tolerance_c=args.temperature_tolerance, allow_dark_scaling=not args.no_dark_scaling)
    report = calibrate_folder(
        args.lights, args.out, args.bias, args.darks, args.flats, args.masters, rules,
        remove_hot_pixels=args.hot_pixels, remove_cosmic_rays=args.cosmic_rays, gain=args.gain,
        read_noise=args.read_noise, progress=True, jobs=args.jobs,
    )
    write_json(args.json or str(Path(args.out) / "calibration.json"), report)
    _note(f"{len(report['lights'])} lights calibrated into {args.out} with {len(report['masters'])} masters")
    for light in report["lights"]:
        for kind, choice in light["choices"].items():
            if choice["master"] is None and not any("includes the bias" in n for n in choice["notes"]):
                _note(f"  {light['file']}: no {kind} applied ({'; '.join(choice['refused'][:2]) or 'none available'})")
    for error in report["errors"]:
        _note(f"  failed {error['file']}: {error['error']}")
    if report["errors"] and not report["lights"]:
        raise PipelineError("no light could be calibrated: " + report["errors"][0]["error"])
    return 0


# --- extract ----------------------------------------------------------------------------------


def _extract(args: argparse.Namespace) -> int:
    from datas_pipeline.detection.extract import (
        BAND_MIN_PIXELS,
        SOURCE_COLUMNS,
        estimate_background,
        extract_sources,
    )
    from datas_pipeline.io.fits import read_frame
    from datas_pipeline.parallel import worker_pool
    from datas_pipeline.workflows import celestial_wcs, luminance

    settings = extraction_settings(args)
    frame = read_frame(args.file)
    image = luminance(frame)
    background = estimate_background(image, **settings.background)
    # A pool is started only where it pays: frames large enough to be measured in parts.
    with worker_pool(args.jobs if image.size >= BAND_MIN_PIXELS else 1) as pool:
        sources = extract_sources(image, background=background, max_sources=args.max_sources, pool=pool,
                                  **settings.extract)
    rows = [{name: jsonable(row[name]) for name in SOURCE_COLUMNS} for row in sources]
    wcs = celestial_wcs(frame)
    if wcs is not None and len(sources):
        ra, dec = wcs.all_pix2world(sources["x"], sources["y"], 0)
        for row, r, d in zip(rows, ra, dec, strict=True):
            row["ra_deg"], row["dec_deg"] = float(r), float(d)
    record = {"file": str(args.file), "shape": list(image.shape), "background": background.global_level,
              "noise": background.global_rms, "count": len(rows), "columns": list(SOURCE_COLUMNS),
              "coordinates": "0-based pixel centres, x = column, y = row",
              "settings": settings.as_record(), "sources": rows}
    write_json(args.json, record)
    _note(f"{len(rows)} sources in {args.file}")
    return 0


# --- photometry -------------------------------------------------------------------------------


def _photometry(args: argparse.Namespace) -> int:
    from datas_pipeline.io.fits import read_frame
    from datas_pipeline.workflows import measure_target

    frame = read_frame(args.file)
    result = measure_target(frame, args.target[0], args.target[1], args.comparisons, gain=args.gain,
                            read_noise=args.read_noise, aperture_px=args.aperture,
                            annulus_px=tuple(args.annulus) if args.annulus else None, method=args.method)
    record = result.as_dict()
    record["file"] = str(args.file)
    write_json(args.json, record)
    _note(f"{args.file}: {result.magnitude:.3f} +- {result.magnitude_error:.3f} ({result.method}, "
          f"{sum(s['used'] for s in result.comparison_stars)} comparison stars)")
    return 0


# --- solve ------------------------------------------------------------------------------------


def _solve(args: argparse.Namespace) -> int:
    from datas_pipeline.astrometry.solve import SolveHints, solve_image
    from datas_pipeline.io.fits import read_frame
    from datas_pipeline.io.headers import normalise_header
    from datas_pipeline.workflows import luminance

    if (args.ra is None) != (args.dec is None):
        raise PipelineError("give both --ra and --dec, or neither")
    if args.blind and (args.ra is not None or args.scale is not None or args.radius is not None):
        raise PipelineError("--blind solves without hints: leave out --ra, --dec, --radius and --scale")
    frame = read_frame(args.file)
    if args.blind:
        hints = SolveHints()
    else:
        hints = SolveHints.from_header(normalise_header(frame.header), ra_deg=args.ra, dec_deg=args.dec,
                                       scale_arcsec=args.scale, radius_deg=args.radius)
    result = solve_image(luminance(frame), hints, solver=args.solver, cpu_limit_s=args.cpu_limit,
                         timeout_s=args.timeout, tweak_order=args.tweak_order)
    record = result.as_dict()
    record["file"] = str(args.file)
    record["hints"] = {"blind": args.blind, "ra_deg": hints.ra_deg, "dec_deg": hints.dec_deg,
                       "radius_deg": hints.radius_deg if hints.ra_deg is not None else None,
                       "scale_arcsec": hints.scale_arcsec}
    if result.solved and not args.no_write:
        _write_wcs(Path(args.file), result)
        record["wcs_written"] = True
    write_json(args.json, record)
    if not result.solved:
        _note(f"{args.file}: not solved ({result.message}) after {result.seconds:.1f} s")
        return 1
    _note(f"{args.file}: solved in {result.seconds:.1f} s: centre {result.ra_deg:.5f} {result.dec_deg:+.5f}, "
          f"{result.pixel_scale_arcsec:.3f}\"/px, rotation {result.rotation_deg:.2f} deg")
    return 0


def _write_wcs(path: Path, result) -> None:
    """Write the solution into the file's image header, in place."""
    from datas_pipeline.astrometry.solve import wcs_to_header

    try:
        with fits.open(path, mode="update") as hdul:
            index = next(i for i, h in enumerate(hdul) if h.is_image and h.header.get("NAXIS", 0) >= 2)
            header = wcs_to_header(result.wcs, hdul[index].header)
            header["PLTSOLVD"] = (True, f"plate solved by DATAS ({result.solver})")
            hdul[index].header = header
    except (OSError, StopIteration) as exc:
        raise PipelineError(f"cannot write the WCS into {path}: {exc}") from None


# --- registration -----------------------------------------------------------------------------


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add grade, calibrate, extract, photometry and solve."""
    # Capture programs write plenty of non-standard cards; astropy's notes on each would
    # bury the one line a user needs.
    warnings.filterwarnings("ignore", message="The following header keyword is invalid", category=AstropyUserWarning)
    grade = subparsers.add_parser("grade", help="grade a folder of frames: accept/reject with reasons, best frame")
    grade.add_argument("folder", type=Path)
    grade.add_argument("--json", required=True, help="output file ('-' for standard output)")
    grade.add_argument("--threshold", type=positive_float, default=5.0, help="detection threshold (sigma)")
    grade.add_argument("--max-fwhm", type=positive_float, help="reject frames with a larger FWHM (px)")
    grade.add_argument("--max-eccentricity", type=positive_float, help="reject frames with more elongated stars")
    grade.add_argument("--catalog", type=Path, help="reference stars (CSV/FITS: ra, dec, mag) for solved frames")
    grade.add_argument("--catalog-mag-limit", type=float, default=12.0, help="faintest catalogue star expected")
    add_jobs_argument(grade)
    grade.set_defaults(func=_grade)

    cal = subparsers.add_parser("calibrate", help="build masters and calibrate a folder of lights")
    cal.add_argument("--lights", type=Path, required=True)
    cal.add_argument("--bias", type=Path)
    cal.add_argument("--darks", type=Path)
    cal.add_argument("--flats", type=Path)
    cal.add_argument("--masters", type=Path, help="a folder of existing masters to choose from too")
    cal.add_argument("--out", type=Path, required=True)
    cal.add_argument("--json", help="report file (default OUT/calibration.json)")
    cal.add_argument("--temperature-tolerance", type=positive_float, default=2.0, help="degrees Celsius")
    cal.add_argument("--no-dark-scaling", action="store_true", help="only darks of the light's exposure")
    cal.add_argument("--hot-pixels", action="store_true", help="repair hot pixels found in the master dark")
    cal.add_argument("--cosmic-rays", action="store_true", help="find and repair cosmic rays (L.A.Cosmic)")
    cal.add_argument("--gain", type=positive_float, help="e-/ADU, when the header has no EGAIN")
    cal.add_argument("--read-noise", type=positive_float, help="e-, when the header has no RDNOISE")
    add_jobs_argument(cal)
    cal.set_defaults(func=_calibrate)

    ext = subparsers.add_parser("extract", help="detect and measure the sources of one frame")
    ext.add_argument("file", type=Path)
    ext.add_argument("--json", required=True)
    ext.add_argument("--max-sources", type=positive_int)
    add_extraction_arguments(ext)
    ext.add_argument("--jobs", "-j", type=positive_int, default=None,
                     help="worker processes for frames of 2048x2048 and more (default: DATAS_WORKERS, else the "
                          "cores; the catalogue does not depend on it)")
    ext.set_defaults(func=_extract)

    phot = subparsers.add_parser("photometry", help="differential photometry of a target on a solved frame")
    phot.add_argument("file", type=Path)
    phot.add_argument("--target", nargs=2, metavar=("RA", "DEC"), required=True,
                      help="degrees, or sexagesimal (RA in hours)")
    phot.add_argument("--comparisons", type=Path, required=True,
                      help="CSV/FITS with ra, dec, mag [, mag_err, name, check]")
    phot.add_argument("--json", required=True)
    phot.add_argument("--method", choices=("ensemble", "single"), default="ensemble")
    phot.add_argument("--gain", type=positive_float, help="e-/ADU (default: EGAIN from the header)")
    phot.add_argument("--read-noise", type=float, help="e- (default: RDNOISE from the header, else 0)")
    phot.add_argument("--aperture", type=positive_float, help="radius (px); default 2 x FWHM")
    phot.add_argument("--annulus", nargs=2, type=positive_float, metavar=("INNER", "OUTER"), help="sky annulus (px)")
    phot.set_defaults(func=_photometry_args)

    solve = subparsers.add_parser("solve", help="plate-solve a frame and write the WCS into its header")
    solve.add_argument("file", type=Path)
    solve.add_argument("--json", required=True)
    solve.add_argument("--ra", type=_coordinate("ra"), help="pointing hint (degrees or hh:mm:ss)")
    solve.add_argument("--dec", type=_coordinate("dec"), help="pointing hint (degrees or dd:mm:ss)")
    solve.add_argument("--radius", type=positive_float, help="search radius around the hint (degrees, default 2)")
    solve.add_argument("--scale", type=positive_float, help="pixel scale hint (arcsec/px)")
    solve.add_argument("--cpu-limit", type=positive_float, default=30.0, help="solver CPU seconds (default 30)")
    solve.add_argument("--timeout", type=positive_float, help="wall-clock seconds (default 4 x (2.5 x CPU limit + 5) + 30: "
                       "a backstop; the CPU budget, 2.5 x CPU limit + 5, stops a search first)")
    solve.add_argument("--tweak-order", type=positive_int, default=1, help="SIP order (1 linear; 2-3 for wide lenses)")
    solve.add_argument("--solver", default="auto", choices=("auto", "tycho2", "astrometry.net", "astap"),
                       help="auto: Tycho-2 matching around the hint (small fields), then astrometry.net")
    solve.add_argument("--blind", action="store_true",
                       help="ignore the header's pointing and scale (astrometry.net over the whole sky; "
                            "give it minutes: --cpu-limit 300)")
    solve.add_argument("--no-write", action="store_true", help="leave the FITS file unchanged")
    solve.set_defaults(func=_solve)


def _photometry_args(args: argparse.Namespace) -> int:
    ra_text, dec_text = args.target
    try:
        args.target = (_coordinate("ra")(ra_text), _coordinate("dec")(dec_text))
    except argparse.ArgumentTypeError as exc:
        raise PipelineError(f"--target: {exc}") from None
    return _photometry(args)
