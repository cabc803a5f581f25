"""Whole jobs over a frame or a folder of frames: what the command line and the workers run.

Each function takes paths and settings, calls the science modules, and returns plain
records ready for JSON. Problems with individual files are collected, not raised, so one
bad frame in a night does not stop the rest; problems with the job itself raise
:class:`~datas_pipeline.errors.PipelineError`.
"""
from __future__ import annotations

import math
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from astropy.wcs import WCS
from tqdm import tqdm

from datas_pipeline.calibration.defects import clean_cosmic_rays, clean_pixels, hot_pixel_map
from datas_pipeline.calibration.masters import (
    CombineSettings,
    Master,
    Sections,
    build_master_bias,
    build_master_dark,
    build_master_flat,
    calibrate_frame,
    prepare_raw,
    write_master,
)
from datas_pipeline.calibration.match import MatchRules, choose_masters, load_master_library
from datas_pipeline.catalog.reference import read_reference_catalog
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.detection.grading import (
    FrameQuality,
    GradingRules,
    SessionGrade,
    grade_session,
    measure_frame,
)
from datas_pipeline.errors import NoStarsError, PipelineError
from datas_pipeline.io.fits import (
    FITS_SUFFIXES,
    Frame,
    debayer_bilinear,
    is_fits_path,
    read_frame,
    write_frame,
)
from datas_pipeline.io.headers import header_celestial_wcs, normalise_header
from datas_pipeline.photometry.aperture import Apertures, NoiseModel, aperture_photometry, recenter
from datas_pipeline.photometry.differential import (
    Comparison,
    PhotometryResult,
    differential_magnitude,
    header_airmass,
)


def fits_files(folder: str | Path, what: str = "frames") -> list[Path]:
    """The FITS files in ``folder``, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PipelineError(f"{folder}: not a folder of {what}")
    files = sorted(p for p in folder.iterdir() if p.is_file() and is_fits_path(p))
    if not files:
        raise PipelineError(f"{folder}: no FITS files ({', '.join(FITS_SUFFIXES)}) among the {what}")
    return files


def luminance(frame: Frame) -> np.ndarray:
    """A 2-D image for measuring: colour planes averaged, raw Bayer mosaics interpolated first."""
    if frame.data.ndim == 3:
        return frame.data.mean(axis=0)
    if frame.bayer_pattern:
        return debayer_bilinear(frame.data, frame.bayer_pattern).mean(axis=0)
    return frame.data


def celestial_wcs(frame: Frame) -> WCS | None:
    """The frame's celestial WCS, or None when its header has none."""
    return header_celestial_wcs(frame.header)


def grade_folder(
    folder: str | Path, rules: GradingRules | None = None, threshold_sigma: float = 5.0,
    catalog_path: str | Path | None = None, catalog_mag_limit: float = 12.0, progress: bool = False,
    jobs: int | None = 1,
) -> tuple[SessionGrade | None, list[dict]]:
    """Grade every frame in ``folder``; returns the session grade and the unreadable files.

    Frames are measured on ``jobs`` processes (None: the ``DATAS_WORKERS`` setting, else the
    cores for large batches, see :func:`~datas_pipeline.parallel.jobs_for_files`); the result
    does not depend on it.
    """
    from datas_pipeline.parallel import jobs_for_files, map_in_order

    catalog = read_reference_catalog(catalog_path) if catalog_path else None
    if catalog is not None:
        catalog = catalog[catalog["mag"] <= catalog_mag_limit]
    qualities: list[FrameQuality] = []
    failures: list[dict] = []
    paths = fits_files(folder)
    jobs = jobs_for_files(paths, jobs) if jobs is None else jobs
    tasks = [(path, threshold_sigma, catalog) for path in paths]
    for outcome in tqdm(map_in_order(_measure_one, tasks, jobs), total=len(tasks), desc="grading", unit="frame",
                        disable=None if progress else True):
        if isinstance(outcome, FrameQuality):
            qualities.append(outcome)
        else:
            failures.append(outcome)
    return (grade_session(qualities, rules or GradingRules()) if qualities else None), failures


def _measure_one(task: tuple) -> FrameQuality | dict:
    """One frame's quality, or ``{"file", "error"}`` when it cannot be measured (runs in a worker)."""
    path, threshold_sigma, catalog = task
    try:
        frame = read_frame(path)
        image = luminance(frame)
        catalog_xy = None
        wcs = celestial_wcs(frame) if catalog is not None else None
        if wcs is not None:
            x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
            ny, nx = image.shape
            inside = (x > 5) & (x < nx - 6) & (y > 5) & (y < ny - 6)
            catalog_xy = np.column_stack([x[inside], y[inside]])
        return measure_frame(image, file=path.name, threshold_sigma=threshold_sigma, catalog_xy=catalog_xy)
    except PipelineError as exc:
        return {"file": path.name, "error": str(exc)}


def _group(frames: list[Frame], key) -> dict:
    groups: dict = defaultdict(list)
    for frame in frames:
        groups[key(frame)].append(frame)
    return groups


def _info(item):
    return item.info if isinstance(item, Master) else normalise_header(item.header)


def _setup(item) -> tuple:
    """What must be equal for frames to share a master: camera, binning, gain, offset, shape."""
    info = _info(item)
    shape = item.data.shape
    if not isinstance(item, Master):  # a raw frame: the shape it will have once trimmed
        trim = Sections.from_header(item.header).trim
        shape = item.data[trim].shape if trim is not None else shape
    return (info.camera, info.binning, info.gain, info.offset, shape)


def _suffix(key, count: int | None) -> str:
    """A file-name suffix telling set-ups apart (empty when there is only one)."""
    if count == 1:
        return ""
    if isinstance(key, tuple):
        camera, binning, gain, offset, shape = key
        parts = [camera, "x".join(map(str, binning)) if binning else None,
                 f"g{gain:g}" if gain is not None else None, f"o{offset:g}" if offset is not None else None]
        return "_" + _safe("_".join(p for p in parts if p)) if any(parts) else ""
    return f"_{key}"


def _safe(text: object) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in str(text)) or "none"


def build_masters(
    out: Path, bias_dir=None, darks_dir=None, flats_dir=None, settings: CombineSettings | None = None,
    progress: bool = False, threads: int | None = None,
) -> list[Master]:
    """Masters from raw folders: one bias, a dark per exposure, a flat per filter (written to
    ``out``), each combined on ``threads`` threads (default: ``DATAS_WORKERS``, else the cores)."""
    masters: list[Master] = []
    settings = settings or CombineSettings()

    def load(folder, what):
        return [read_frame(p) for p in fits_files(folder, what)] if folder else []

    biases, darks, flats = load(bias_dir, "bias frames"), load(darks_dir, "darks"), load(flats_dir, "flats")
    by_setup = _group(biases, _setup)
    for n, group in enumerate(by_setup.values()):
        bias = build_master_bias(group, Sections.from_header(group[0].header), settings, progress, threads)
        write_master(bias, out / f"master_bias{_suffix(n, len(by_setup))}.fits")
        masters.append(bias)
    for (setup, exposure), group in _group(darks, lambda f: (_setup(f), _info(f).exposure_s)).items():
        bias = next((m for m in masters if m.kind == "bias" and _setup(m) == setup), None)
        dark = build_master_dark(group, bias, Sections.from_header(group[0].header), settings, progress, threads)
        write_master(dark, out / f"master_dark_{_safe(exposure)}s{_suffix(setup, None)}.fits")
        masters.append(dark)
    for (setup, filter_name), group in _group(flats, lambda f: (_setup(f), _info(f).filter)).items():
        exposure = _info(group[0]).exposure_s
        bias = next((m for m in masters if m.kind == "bias" and _setup(m) == setup), None)
        darks_here = [m for m in masters if m.kind == "dark" and _setup(m) == setup]
        # Flat-darks of the flats' exposure first; otherwise a bias-subtracted dark, scaled.
        flat_dark = next((m for m in darks_here if m.exposure_s == exposure), None) or next(
            (m for m in darks_here if m.bias_subtracted), None)
        flat = build_master_flat(group, bias, flat_dark, Sections.from_header(group[0].header), settings, progress,
                                 threads)
        write_master(flat, out / f"master_flat_{_safe(filter_name)}{_suffix(setup, None)}.fits")
        masters.append(flat)
    return masters


def calibrate_folder(
    lights_dir: str | Path, out: str | Path, bias_dir=None, darks_dir=None, flats_dir=None,
    masters_dir=None, rules: MatchRules | None = None, remove_hot_pixels: bool = False,
    remove_cosmic_rays: bool = False, gain: float | None = None, read_noise: float | None = None,
    progress: bool = False, jobs: int | None = 1,
) -> dict:
    """Build masters, pick the right ones for each light, calibrate, and report every choice.

    Masters are combined and lights calibrated on ``jobs`` threads (None: ``DATAS_WORKERS``,
    else the cores): the combination kernel, numpy's arithmetic and the file reads and
    writes release the GIL, so threads share the masters instead of sending them to worker
    processes (measured on 25 lights of 1024^2: threads 1.4x serial, processes 0.7x), and
    cost nothing to start. The files written do not depend on it.
    """
    from datas_pipeline.parallel import resolve_jobs

    out = Path(out)
    lights = fits_files(lights_dir, "lights")
    out.mkdir(parents=True, exist_ok=True)
    library = build_masters(out / "masters", bias_dir, darks_dir, flats_dir, progress=progress, threads=jobs)
    if masters_dir:
        library += load_master_library(masters_dir)
    if not library:
        raise PipelineError("no calibration frames: give --bias, --darks, --flats or --masters")
    report = {"masters": [str(m.path) for m in library], "lights": [], "errors": []}
    rules = rules or MatchRules()

    def calibrate(path: Path) -> dict:
        try:
            return _calibrate_one(path, out, library, rules, remove_hot_pixels, remove_cosmic_rays, gain, read_noise)
        except PipelineError as exc:
            return {"file": path.name, "error": str(exc)}

    with ThreadPoolExecutor(resolve_jobs(jobs)) as pool:
        for outcome in tqdm(pool.map(calibrate, lights), total=len(lights), desc="calibrating", unit="frame",
                            disable=None if progress else True):
            report["errors" if "error" in outcome else "lights"].append(outcome)
    return report


def _calibrate_one(path, out, library, rules, remove_hot_pixels, remove_cosmic_rays, gain, read_noise) -> dict:
    frame = read_frame(path)
    info = normalise_header(frame.header)
    sections = Sections.from_header(frame.header)
    shape = prepare_raw(frame.data, sections).shape
    choices = choose_masters(info, shape, library, rules)
    chosen = {kind: c.master for kind, c in choices.items()}
    result = calibrate_frame(frame, chosen["bias"], chosen["dark"], chosen["flat"], sections)
    data, notes = result.data, []
    if remove_hot_pixels:
        dark = chosen["dark"]
        if dark is not None and dark.bias_subtracted:
            data = clean_pixels(data, hot_pixel_map(dark.data))
        else:
            notes.append("hot pixels not removed: no bias-subtracted master dark")
    if remove_cosmic_rays:
        e_per_adu = gain or info.electrons_per_adu
        if e_per_adu is None:
            raise PipelineError(f"{path.name}: cosmic-ray removal needs the gain in e-/ADU (EGAIN or --gain)")
        data, hits = clean_cosmic_rays(data, e_per_adu, read_noise or info.read_noise_e or 5.0)
        notes.append(f"{int(hits.sum())} cosmic-ray pixels repaired")
    target = write_frame(out / f"{path.stem.removesuffix('.fits')}.fits", data, result.header, overwrite=True)
    return {"file": path.name, "output": str(target), "applied": result.header["CALSTAT"],
            "choices": {kind: c.as_dict() for kind, c in choices.items()}, "notes": notes}


def frame_fwhm(image: np.ndarray) -> tuple[float, np.ndarray]:
    """Median FWHM (px) of the well-measured stars, and the extracted sources."""
    sources = extract_sources(image)
    fitted = sources[np.isfinite(sources["moffat_beta"])]
    if len(fitted) < 3:
        raise NoStarsError(f"only {len(fitted)} measurable stars: cannot set the photometry aperture")
    return float(np.median(fitted["fwhm"])), sources


def measure_target(
    frame: Frame, target_ra: float, target_dec: float, comparisons_path: str | Path,
    gain: float | None = None, read_noise: float | None = None, aperture_px: float | None = None,
    annulus_px: tuple[float, float] | None = None, method: str = "ensemble",
) -> PhotometryResult:
    """Differential photometry of a target on a solved frame against a comparison-star table.

    The table (CSV/FITS) has ``ra``, ``dec``, ``mag`` and optionally ``mag_err``, ``name`` and
    ``check`` (true for the check star, which stays out of the zero point).
    """
    wcs = celestial_wcs(frame)
    if wcs is None:
        raise PipelineError(f"{frame.path}: no WCS in the header; solve it first (datas-pipeline solve)")
    info = normalise_header(frame.header)
    e_per_adu = gain if gain is not None else info.electrons_per_adu
    if e_per_adu is None:
        raise PipelineError("the gain in e-/ADU is unknown (no EGAIN in the header): pass --gain")
    image = luminance(frame)
    table, names, errors, is_check = _comparison_table(comparisons_path)
    fwhm, _ = frame_fwhm(image)
    rule = Apertures.for_fwhm(fwhm)  # the one aperture rule (datas_pipeline.photometry.aperture.Apertures)
    radius = aperture_px or rule.radius
    inner, outer = annulus_px or ((rule.inner, rule.outer) if aperture_px is None
                                  else (max(3.0 * fwhm, radius + 3.0), max(5.0 * fwhm, radius + 8.0)))
    ra = np.concatenate([[target_ra], table["ra"]])
    dec = np.concatenate([[target_dec], table["dec"]])
    x, y = wcs.all_world2pix(ra, dec, 0)
    ny, nx = image.shape
    inside = (x >= outer) & (x < nx - outer) & (y >= outer) & (y < ny - outer)
    if not inside[0]:
        raise PipelineError(f"the target ({target_ra:.5f}, {target_dec:.5f}) is off the frame or too near its edge")
    x, y, _ = recenter(image, x, y, fwhm)
    noise = NoiseModel(gain=e_per_adu, read_noise=read_noise if read_noise is not None else (info.read_noise_e or 0.0),
                       exposure_s=info.exposure_s or 0.0)
    phot = aperture_photometry(image, x, y, radius, (inner, outer), noise)
    comps, check = [], None
    for i in range(len(table)):
        row = phot[i + 1]
        if not inside[i + 1] or not np.isfinite(row["mag"]):
            continue
        star = Comparison(float(table["mag"][i]), float(row["mag"]), float(row["mag_err"]), errors[i],
                          float(table["ra"][i]), float(table["dec"][i]), names[i])
        if is_check[i]:
            check = star
        else:
            comps.append(star)
    if not comps:
        raise PipelineError("none of the comparison stars is measurable on this frame")
    result = differential_magnitude(float(phot["mag"][0]), float(phot["mag_err"][0]), comps, check, method)
    result.filter, result.exposure_s = info.filter, info.exposure_s
    result.snr = float(phot["snr"][0])
    middle = info.mid_exposure
    if middle is not None:
        from astropy.time import Time

        result.time_utc, result.jd_mid = middle.isoformat(), float(Time(middle).jd)
    result.airmass = header_airmass(info)[0]
    result.aperture_px, result.annulus_px = radius, [inner, outer]
    return result


def _mag_err(value, path, row: int) -> float:
    """A comparison star's catalogue magnitude error; blank or non-finite counts as unknown (0)."""
    if np.ma.is_masked(value) or str(value).strip() == "":
        return 0.0
    try:
        error = float(value)
    except (TypeError, ValueError):
        raise PipelineError(f"{path}: row {row} has mag_err {str(value)!r}, not a number") from None
    if not math.isfinite(error):
        return 0.0
    if error < 0:
        raise PipelineError(f"{path}: row {row} has a negative mag_err ({error})")
    return error


def _comparison_table(path) -> tuple[np.ndarray, list, list, list]:
    from astropy.table import Table

    table = read_reference_catalog(path)
    raw = Table.read(path, format="ascii.csv") if str(path).lower().endswith((".csv", ".txt")) else Table.read(path)
    columns = {c.lower(): c for c in raw.colnames}
    n = len(raw)
    if len(table) != n:
        raise PipelineError(f"{path}: some comparison rows lack a finite RA or Dec")
    names = [str(v) for v in raw[columns["name"]]] if "name" in columns else [f"C{i + 1}" for i in range(n)]
    errors = [_mag_err(v, path, row) for row, v in enumerate(raw[columns["mag_err"]], start=1)] \
        if "mag_err" in columns else [0.0] * n
    is_check = [str(v).strip().lower() in ("1", "true", "yes", "y", "t") for v in raw[columns["check"]]] \
        if "check" in columns else [False] * n
    return table, names, errors, is_check
