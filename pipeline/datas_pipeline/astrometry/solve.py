"""Plate solving: astrometry.net's solve-field on our own star list, and WCS propagation.

The solver is given the brightest sources from :func:`datas_pipeline.detection.extract.extract_sources` as
an x/y list (no image I/O, no second extraction), hints when known (pointing and radius;
pixel scale from focal length and pixel size), a CPU limit and a wall-clock timeout after
which the whole process group is killed. The result carries the WCS and its quality: the
number of catalogue stars matched and their residuals.

Frames of one pointing sequence need not be solved again: :func:`propagate_wcs` maps each
frame onto the solved reference through the star match and composes the WCS.
ASTAP is used instead when asked for and installed (:data:`SOLVERS`).
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning

from datas_pipeline.astrometry.limits import run_limited, stop_reason
from datas_pipeline.errors import NoStarsError, PipelineError, RegistrationError
from datas_pipeline.registration.register import (
    Registration,
    RegistrationGates,
    prepare_reference,
    register_stars,
)

SOLVE_FIELD = "solve-field"
# Sources handed to the solver: astrometry.net rarely needs more than the brightest ~100.
MAX_SOLVE_SOURCES = 200


class SolveError(PipelineError):
    """The solver is missing or failed in a way the user must fix (not merely 'no solution')."""


@dataclass(frozen=True)
class SolveHints:
    """What is known before solving: pointing (degrees) with a search radius, pixel scale.

    ``scale_tolerance`` is the fractional uncertainty of ``scale_arcsec`` (arcsec/px).
    """

    ra_deg: float | None = None
    dec_deg: float | None = None
    radius_deg: float = 2.0
    scale_arcsec: float | None = None
    scale_tolerance: float = 0.15

    @classmethod
    def from_header(cls, info, **overrides) -> SolveHints:
        """Hints from a :class:`~datas_pipeline.io.headers.FrameHeader` (pointing; scale from optics)."""
        values = {"ra_deg": info.ra_deg, "dec_deg": info.dec_deg, "scale_arcsec": info.pixel_scale_arcsec}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class SolveResult:
    """A solve's outcome. Angles in degrees, scale arcsec/px, times seconds.

    ``ra_deg``/``dec_deg`` are the image centre; ``rotation_deg`` the position angle of the
    image's +y axis (east of north); ``flipped`` True when the image is mirrored (east to the
    right with north up). ``matched`` catalogue stars fit with ``rms_arcsec`` residuals.
    """

    solved: bool
    seconds: float
    solver: str
    wcs: WCS | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    pixel_scale_arcsec: float | None = None
    rotation_deg: float | None = None
    flipped: bool | None = None
    matched: int | None = None
    rms_arcsec: float | None = None
    index: str | None = None
    message: str = ""
    extras: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        keys = ("solved", "ra_deg", "dec_deg", "pixel_scale_arcsec", "rotation_deg", "flipped", "seconds",
                "matched", "rms_arcsec", "solver", "index", "message")
        out = {k: getattr(self, k) for k in keys}
        for key in ("stopped_by", "cpu_seconds", "false_alarm"):
            if key in self.extras:
                out[key] = self.extras[key]
        return {k: (round(v, 7) if isinstance(v, float) else v) for k, v in out.items()}


def describe_wcs(wcs: WCS, shape: tuple[int, int]) -> dict:
    """Centre (degrees), pixel scale (arcsec/px), rotation and parity of a celestial WCS."""
    ny, nx = shape
    cx, cy = (nx - 1) / 2.0, (ny - 1) / 2.0
    centre = wcs.pixel_to_world(cx, cy)
    up = wcs.pixel_to_world(cx, cy + 1.0)
    right = wcs.pixel_to_world(cx + 1.0, cy)
    rotation = float(centre.position_angle(up).deg) % 360.0
    scale = math.sqrt(centre.separation(up).arcsec * centre.separation(right).arcsec)
    # Unflipped: +x lies 90 degrees clockwise (westward) of +y on the sky.
    turn = (float(centre.position_angle(right).deg) - rotation) % 360.0
    return {"ra_deg": float(centre.ra.deg), "dec_deg": float(centre.dec.deg), "pixel_scale_arcsec": scale,
            "rotation_deg": rotation, "flipped": bool(abs(turn - 90.0) < 45.0)}


def write_xylist(path: Path, x: np.ndarray, y: np.ndarray, flux: np.ndarray) -> Path:
    """An astrometry.net x/y list: FITS (1-based) pixel positions, brightest first."""
    order = np.argsort(-flux)
    columns = [fits.Column(name="X", format="D", array=x[order] + 1.0),
               fits.Column(name="Y", format="D", array=y[order] + 1.0),
               fits.Column(name="FLUX", format="D", array=flux[order])]
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns(columns)]).writeto(path, overwrite=True)
    return path


def solve_sources(
    x: np.ndarray, y: np.ndarray, flux: np.ndarray, shape: tuple[int, int],
    hints: SolveHints = SolveHints(), cpu_limit_s: float = 30.0, timeout_s: float | None = None,
    tweak_order: int = 2, work_dir: Path | None = None,
) -> SolveResult:
    """Solve a star list (0-based pixel x, y and flux) from a frame of ``shape`` (ny, nx).

    ``cpu_limit_s`` is solve-field's own CPU limit; its process group is stopped at
    :func:`~datas_pipeline.astrometry.limits.cpu_budget` of it, and at ``timeout_s`` of wall
    time (default :func:`~datas_pipeline.astrometry.limits.wall_budget`). A field that is not
    solved is a normal result (``solved=False``, with the reason naming the limit that
    stopped it in ``message`` and ``extras["stopped_by"]``), not an exception.
    """
    if shutil.which(SOLVE_FIELD) is None:
        raise SolveError("solve-field is not installed (apt-get install astrometry.net astrometry-data-tycho2)")
    if len(x) < 5:
        raise NoStarsError(f"only {len(x)} stars to solve with; at least 5 are needed")
    ny, nx = shape
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="datas-solve-", dir=work_dir) as tmp:
        folder = Path(tmp)
        keep = np.argsort(-np.asarray(flux))[:MAX_SOLVE_SOURCES]
        xyls = write_xylist(folder / "field.xyls", np.asarray(x)[keep], np.asarray(y)[keep], np.asarray(flux)[keep])
        command = [SOLVE_FIELD, str(xyls), "--dir", str(folder), "--no-plots", "--overwrite",
                   "--width", str(nx), "--height", str(ny), "--x-column", "X", "--y-column", "Y",
                   "--sort-column", "FLUX", "--cpulimit", str(int(math.ceil(cpu_limit_s))),
                   "--crpix-center", "--new-fits", "none", "--index-xyls", "none", "--rdls", "none",
                   "--match", "none", "--temp-dir", str(folder)]
        command += ["--tweak-order", str(tweak_order)] if tweak_order else ["--no-tweak"]
        if hints.scale_arcsec:
            low, high = hints.scale_arcsec * (1 - hints.scale_tolerance), hints.scale_arcsec * (1 + hints.scale_tolerance)
            command += ["--scale-units", "arcsecperpix", "--scale-low", f"{low:.6f}", "--scale-high", f"{high:.6f}"]
        if hints.ra_deg is not None and hints.dec_deg is not None:
            command += ["--ra", f"{hints.ra_deg:.6f}", "--dec", f"{hints.dec_deg:.6f}", "--radius", f"{hints.radius_deg:g}"]
        outcome = run_limited(command, cpu_limit_s, timeout_s)
        code, output = outcome.code, outcome.output
        seconds = time.monotonic() - started
        wcs_path = folder / "field.wcs"
        extras = {"cpu_seconds": round(outcome.cpu_s, 2), "stopped_by": outcome.stopped_by}
        if not wcs_path.is_file():
            reason = stop_reason(outcome, cpu_limit_s, timeout_s)
            if outcome.stopped_by is None and "cpu time limit reached" in output.lower():
                extras["stopped_by"] = "solver cpu limit"
            if code not in (0, None):
                reason = f"solve-field failed (exit {code}): {output.strip().splitlines()[-1] if output.strip() else ''}"
            return SolveResult(False, seconds, "astrometry.net", message=reason, extras=extras)
        wcs = _read_wcs(wcs_path)
        matched, rms = _correspondence_quality(folder / "field.corr", wcs)
    index = re.search(r"index-[\w.-]+\.fits", output)
    return SolveResult(True, seconds, "astrometry.net", wcs=wcs, matched=matched, rms_arcsec=rms,
                       index=index.group(0) if index else None, message="solved", extras=extras,
                       **describe_wcs(wcs, shape))


def _read_wcs(path: Path) -> WCS:
    import warnings

    header = fits.getheader(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _correspondence_quality(path: Path, wcs: WCS) -> tuple[int | None, float | None]:
    """Matched catalogue stars and their rms residual (arcsec) from solve-field's .corr file."""
    if not path.is_file():
        return None, None
    table = fits.getdata(path, 1)
    if len(table) == 0:
        return 0, None
    ra, dec = wcs.all_pix2world(table["field_x"] - 1.0, table["field_y"] - 1.0, 0)
    d_ra = (ra - table["index_ra"] + 180.0) % 360.0 - 180.0
    d_dec = dec - table["index_dec"]
    offsets = np.hypot(d_ra * np.cos(np.radians(table["index_dec"])), d_dec) * 3600.0
    return int(len(table)), float(np.sqrt(np.mean(offsets**2)))


def wcs_to_header(wcs: WCS, header: fits.Header | None = None) -> fits.Header:
    """``header`` with its old celestial WCS replaced by ``wcs`` (SIP kept when present)."""
    out = header.copy() if header is not None else fits.Header()
    stale = re.compile(r"^(CTYPE|CRVAL|CRPIX|CDELT|CUNIT|CD\d_\d|PC\d_\d|CROTA|[AB]P?_\d+_\d+|[AB]P?_ORDER|"
                       r"WCSAXES|LONPOLE|LATPOLE|RADESYS|EQUINOX|MJDREF|IMAGEW|IMAGEH)")
    for key in [k for k in out if stale.match(k)]:
        out.remove(key, remove_all=True)
    out.update(wcs.to_header(relax=True))
    return out


@dataclass(frozen=True)
class PropagatedWCS:
    """A frame's WCS derived from the reference's, and the registration it came through."""

    wcs: WCS
    registration: Registration
    seconds: float


# Frames of one pointing share the plate scale: a tighter scale gate than general
# registration's, so a wrong match cannot slip a few per cent of scale into the WCS.
SEQUENCE_GATES = RegistrationGates(min_inliers=8, max_rms_px=1.0, max_scale_change=0.01)


def _star_table(xy: np.ndarray) -> np.ndarray:
    """(n, 2) positions, brightest first, as the star table registration takes."""
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    table = np.zeros(len(xy), dtype=[("x", "f8"), ("y", "f8"), ("flux", "f8")])
    table["x"], table["y"] = xy[:, 0], xy[:, 1]
    table["flux"] = np.arange(len(xy), 0, -1)  # the order is all the caller gives of brightness
    return table


def propagate_wcs(
    reference_wcs: WCS,
    reference_xy: np.ndarray,
    frame_xy: np.ndarray,
    gates: RegistrationGates | None = None,
    frame_shape: tuple[int, int] | None = None,
) -> PropagatedWCS:
    """The WCS of a frame of the same pointing sequence, from the solved reference frame.

    ``reference_xy`` and ``frame_xy`` are (n, 2) 0-based star positions (px), brightest
    first. The frame is registered on the reference (:func:`datas_pipeline.registration.register.register_stars`,
    affine, so any shift, rotation or meridian flip) and the map composed with the reference's
    linear WCS exactly; a reference with SIP distortion is refitted through a grid of points.
    ``frame_shape`` (ny, nx) defaults to the reference's.

    Raises
    ------
    RegistrationError
        The frame does not match the reference within ``gates`` (the reason says which).
    """
    started = time.monotonic()
    shape = _reference_shape(reference_wcs, reference_xy)
    reference = prepare_reference(stars=_star_table(reference_xy), shape=shape)
    registration = register_stars(reference, _star_table(frame_xy), frame_shape or shape, kind="affine",
                                  gates=gates or SEQUENCE_GATES)
    transform = registration.require()
    # The registration maps reference -> frame pixels; the WCS needs frame -> reference.
    forward = transform.matrix[:2, :2]
    matrix = np.linalg.inv(forward)
    offset = -matrix @ transform.matrix[:2, 2]
    if reference_wcs.sip is None:
        wcs = reference_wcs.deepcopy()
        # reference pixel (1-based) = A (frame pixel (1-based) - 1) + t + 1
        crpix_ref0 = np.asarray(reference_wcs.wcs.crpix) - 1.0
        wcs.wcs.crpix = forward @ crpix_ref0 + transform.matrix[:2, 2] + 1.0
        if reference_wcs.wcs.has_cd():
            wcs.wcs.cd = reference_wcs.wcs.cd @ matrix
        else:
            wcs.wcs.pc = reference_wcs.pixel_scale_matrix @ matrix
            wcs.wcs.cdelt = [1.0, 1.0]
        wcs.wcs.set()
    else:
        wcs = _refit_with_sip(reference_wcs, matrix, offset, shape)
    return PropagatedWCS(wcs, registration, time.monotonic() - started)


def _reference_shape(reference_wcs: WCS, reference_xy: np.ndarray) -> tuple[int, int]:
    """(ny, nx) of the reference: from its WCS, else the extent of its stars."""
    if reference_wcs.pixel_shape:
        nx, ny = reference_wcs.pixel_shape
        return int(ny), int(nx)
    xy = np.asarray(reference_xy, dtype=np.float64).reshape(-1, 2)
    if not len(xy):
        raise RegistrationError("the reference has no stars")
    return int(np.ceil(xy[:, 1].max())) + 1, int(np.ceil(xy[:, 0].max())) + 1


def _refit_with_sip(reference_wcs: WCS, matrix: np.ndarray, offset: np.ndarray, shape: tuple[int, int]) -> WCS:
    from astropy.coordinates import SkyCoord
    from astropy.wcs.utils import fit_wcs_from_points

    ny, nx = shape
    gy, gx = np.mgrid[0:ny:complex(0, 12), 0:nx:complex(0, 12)]
    fx, fy = gx.ravel(), gy.ravel()
    rx, ry = matrix @ np.vstack([fx, fy]) + offset[:, None]
    ra, dec = reference_wcs.all_pix2world(rx, ry, 0)
    return fit_wcs_from_points((fx, fy), SkyCoord(ra, dec, unit="deg"), proj_point="center",
                               sip_degree=reference_wcs.sip.a_order)


def _astap_solve(image: np.ndarray, sources: np.ndarray, hints: SolveHints, cpu_limit_s: float,
                 timeout_s: float | None, tweak_order: int) -> SolveResult:
    """ASTAP (hnsky.org) on the image itself: it needs the field height and, usually, a pointing."""
    del sources, tweak_order  # ASTAP detects its own stars and fits its own model
    binary = shutil.which("astap") or shutil.which("astap_cli")
    if binary is None:
        raise SolveError("ASTAP is not installed (it is not packaged for Debian; see hnsky.org)")
    ny, nx = image.shape
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="datas-astap-") as tmp:
        path = Path(tmp) / "field.fits"
        fits.PrimaryHDU(np.asarray(image, dtype=np.float32)).writeto(path)
        command = [binary, "-f", str(path), "-o", str(Path(tmp) / "field"), "-wcs"]
        if hints.scale_arcsec:
            command += ["-fov", f"{hints.scale_arcsec * ny / 3600.0:.4f}"]
        if hints.ra_deg is not None and hints.dec_deg is not None:
            command += ["-ra", f"{hints.ra_deg / 15.0:.6f}", "-spd", f"{hints.dec_deg + 90.0:.6f}",
                        "-r", f"{hints.radius_deg:g}"]
        outcome = run_limited(command, cpu_limit_s, timeout_s)
        seconds = time.monotonic() - started
        wcs_path = Path(tmp) / "field.wcs"
        if outcome.code is None or not wcs_path.is_file():
            return SolveResult(False, seconds, "astap", message=stop_reason(outcome, cpu_limit_s, timeout_s),
                               extras={"stopped_by": outcome.stopped_by})
        wcs = _read_wcs(wcs_path)
    return SolveResult(True, seconds, "astap", wcs=wcs, message="solved", **describe_wcs(wcs, (ny, nx)))


def _astrometry_net_solve(image: np.ndarray, sources: np.ndarray, hints: SolveHints, cpu_limit_s: float,
                          timeout_s: float | None, tweak_order: int) -> SolveResult:
    return solve_sources(sources["x_win"], sources["y_win"], sources["flux"], image.shape, hints,
                         cpu_limit_s=cpu_limit_s, timeout_s=timeout_s, tweak_order=tweak_order)


def _tycho2_solve(image: np.ndarray, sources: np.ndarray, hints: SolveHints, cpu_limit_s: float,
                  timeout_s: float | None, tweak_order: int) -> SolveResult:
    """Tycho-2 projected around the hint and matched by triangles (small fields; needs hints)."""
    from datas_pipeline.astrometry.catalog_solve import solve_with_catalog

    del cpu_limit_s, timeout_s, tweak_order  # it takes well under a second and fits a linear TAN WCS
    return solve_with_catalog(sources["x_win"], sources["y_win"], sources["flux"], image.shape, hints)


def _auto_solve(image: np.ndarray, sources: np.ndarray, hints: SolveHints, cpu_limit_s: float,
                timeout_s: float | None, tweak_order: int) -> SolveResult:
    """With a pointing and scale hint, Tycho-2 matching first (it solves fields of 10-30' that
    astrometry.net's Tycho-2 indexes cannot); astrometry.net when that fails or no hint exists."""
    hinted = hints.ra_deg is not None and hints.dec_deg is not None and hints.scale_arcsec
    first = None
    if hinted:
        first = _tycho2_solve(image, sources, hints, cpu_limit_s, timeout_s, tweak_order)
        if first.solved:
            return first
    if shutil.which(SOLVE_FIELD) is None:
        if first is not None:
            return first
        raise SolveError("solve-field is not installed (apt-get install astrometry.net astrometry-data-tycho2)")
    result = _astrometry_net_solve(image, sources, hints, cpu_limit_s, timeout_s, tweak_order)
    if first is not None:
        result.seconds += first.seconds
        if not result.solved:
            result.message = f"Tycho-2 matching: {first.message}; astrometry.net: {result.message}"
    return result


# Solvers by name: each takes (image, sources, hints, cpu limit, timeout, tweak order).
SOLVERS = {"auto": _auto_solve, "astrometry.net": _astrometry_net_solve, "tycho2": _tycho2_solve,
           "astap": _astap_solve}


def available_solvers() -> dict[str, bool]:
    """Which solvers are installed on this machine."""
    from datas_pipeline.catalog.reference import CatalogError, default_tycho2_index

    try:
        tycho2 = default_tycho2_index().is_file()
    except CatalogError:
        tycho2 = False
    return {"astrometry.net": shutil.which(SOLVE_FIELD) is not None, "tycho2": tycho2,
            "astap": bool(shutil.which("astap") or shutil.which("astap_cli"))}


def solve_image(
    image: np.ndarray, hints: SolveHints = SolveHints(), solver: str = "astrometry.net",
    cpu_limit_s: float = 30.0, timeout_s: float | None = None, tweak_order: int = 1,
    sources: np.ndarray | None = None,
) -> SolveResult:
    """Extract stars from ``image`` (2-D, ADU) and solve it with the named solver.

    ``tweak_order`` 1 fits a linear WCS to the matched stars, which suits fields of a few
    degrees; wide camera-lens fields want 2 or 3 (SIP distortion).
    """
    from datas_pipeline.detection.extract import extract_sources

    if solver not in SOLVERS:
        raise SolveError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 3:
        data = data.mean(axis=0)  # colour: solve on the luminance
    if data.ndim != 2:
        raise SolveError(f"expected a 2-D image to solve, got shape {data.shape}")
    if sources is None:
        sources = extract_sources(data, max_sources=MAX_SOLVE_SOURCES)
    if len(sources) < 5:
        raise NoStarsError(f"only {len(sources)} stars detected; a plate solve needs at least 5 "
                           f"(is the frame blank, clouded out or badly defocused?)")
    return SOLVERS[solver](data, sources, hints, cpu_limit_s, timeout_s, tweak_order)
