"""CCD calibration: overscan and trim, master bias/dark/flat, and calibrating lights.

The arithmetic is ccdproc's (checked against it to 1e-5 on a real SAAO frame in
tests/pipeline/test_calibration.py), organised for speed: frames are prepared one at a time
into an (n, ny, nx) float32 stack (on disk through a memory map when it would not fit the
memory budget) and combined in row bands by a compiled kernel (datas_pipeline.kernels) on
the caller's threads, so each file is read once, unlike ccdproc.combine's chunking which
re-reads every file per chunk.

Conventions: pixel values in ADU; exposure in seconds; a master dark is stored with the
bias removed (``BIASSUB = T``) whenever a master bias was given, so it can be scaled to any
exposure; a master flat is normalised to mean 1 over its pixels.
"""
from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from astropy.io import fits
from tqdm import tqdm

from datas_pipeline import kernels
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import Frame, read_frame, write_frame
from datas_pipeline.io.headers import FrameHeader, normalise_header
from datas_pipeline.parallel import resolve_jobs
from datas_pipeline.robust import MAD_TO_SIGMA, median

MasterKind = Literal["bias", "dark", "flat"]
FrameSource = Frame | str | Path
# Stacks bigger than this go to a memory-mapped temporary file instead of RAM.
MEMORY_BUDGET_BYTES = 2 * 1024**3
# Header keywords a master copies from its first frame, so matching can read them back.
IDENTITY_KEYS = (
    "INSTRUME", "CAMERA", "DETECTOR", "XBINNING", "YBINNING", "CCDSUM", "BINNING", "GAIN", "EGAIN",
    "OFFSET", "FILTER", "TELESCOP", "READOUTM", "BAYERPAT", "XBAYROFF", "YBAYROFF", "RDNOISE",
)


class CalibrationError(PipelineError):
    """Frames or masters that cannot be combined or applied, with the reason."""


@dataclass(frozen=True)
class CombineSettings:
    """How a stack of frames becomes one.

    Pixels further than ``sigma_low``/``sigma_high`` spreads from the centre are rejected
    (None: no rejection on that side), ``iterations`` times, then the survivors are averaged
    (``method = "mean"``) or their median taken. ``center`` and ``spread`` choose the robust
    (median, MAD-based sigma) or the classical (mean, standard deviation) estimators.
    """

    method: Literal["mean", "median"] = "mean"
    sigma_low: float | None = 3.0
    sigma_high: float | None = 3.0
    center: Literal["median", "mean"] = "median"
    spread: Literal["mad_std", "std"] = "mad_std"
    iterations: int = 3
    band_rows: int = 64


# ccdproc.combine(method="average", sigma_clip=True) with its defaults: one pass, mean/std.
CCDPROC_SIGMA_CLIP = CombineSettings(center="mean", spread="std", iterations=1)


@dataclass(frozen=True)
class Sections:
    """Overscan (BIASSEC) and useful area (TRIMSEC), as numpy slices of the raw frame."""

    overscan: tuple[slice, slice] | None = None
    trim: tuple[slice, slice] | None = None
    overscan_statistic: Literal["median", "mean"] = "median"
    overscan_order: int | None = None

    @classmethod
    def from_header(cls, header: fits.Header, **options) -> Sections:
        """BIASSEC and TRIMSEC (or DATASEC) read from a raw frame's header."""
        overscan = header.get("BIASSEC")
        trim = header.get("TRIMSEC", header.get("DATASEC"))
        return cls(
            overscan=parse_section(overscan) if isinstance(overscan, str) else None,
            trim=parse_section(trim) if isinstance(trim, str) else None,
            **options,
        )


@dataclass
class Master:
    """A combined calibration frame and the header that describes it."""

    kind: MasterKind
    data: np.ndarray
    header: fits.Header
    path: Path | None = None
    info: FrameHeader = field(init=False)

    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.info = normalise_header(self.header)

    def flat_divisor(self, floor: float) -> np.ndarray:
        """This flat's response, NaN where it is below ``floor``: dividing a light by it
        flat-fields the light and blanks what the flat cannot correct (made once per floor)."""
        key = ("divisor", floor)
        if key not in self._derived:
            self._derived[key] = np.where(self.data >= floor, self.data, np.float32(np.nan)).astype(np.float32)
        return self._derived[key]

    def scaled(self, factor: float) -> np.ndarray:
        """This master times ``factor`` (float32), made once per factor: a dark for another exposure."""
        if factor == 1.0:
            return self.data
        key = ("scaled", factor)
        if key not in self._derived:
            self._derived[key] = np.float32(factor) * self.data
        return self._derived[key]

    @property
    def exposure_s(self) -> float | None:
        return self.info.exposure_s

    @property
    def bias_subtracted(self) -> bool:
        return bool(self.header.get("BIASSUB", False))


def parse_section(text: str) -> tuple[slice, slice]:
    """A FITS/IRAF section ``[x1:x2,y1:y2]`` (1-based, inclusive) as numpy (rows, cols) slices."""
    match = re.fullmatch(r"\s*\[\s*(\d+|\*)\s*(?::\s*(\d+))?\s*,\s*(\d+|\*)\s*(?::\s*(\d+))?\s*\]\s*", text or "")
    if not match:
        raise CalibrationError(f"{text!r} is not a FITS section like [x1:x2,y1:y2]")
    x1, x2, y1, y2 = match.groups()

    def axis(lo: str, hi: str | None) -> slice:
        if lo == "*":
            return slice(None)
        a, b = int(lo), int(hi if hi is not None else lo)
        if a < 1 or b < 1:
            raise CalibrationError(f"section {text!r} starts before pixel 1")
        return slice(min(a, b) - 1, max(a, b))

    return axis(y1, y2), axis(x1, x2)


def subtract_overscan(data: np.ndarray, sections: Sections) -> np.ndarray:
    """Subtract the overscan level row by row (or column by column for a row overscan).

    The overscan strip is collapsed with its median (or mean) across its short axis; with
    ``overscan_order`` a polynomial of that order along the long axis smooths it first.
    """
    if sections.overscan is None:
        return data
    strip = data[sections.overscan]
    if strip.size == 0:
        raise CalibrationError(f"the overscan section lies outside the {data.shape} frame")
    axis = 1 if strip.shape[0] >= strip.shape[1] else 0
    reduce = np.median if sections.overscan_statistic == "median" else np.mean
    level = reduce(strip.astype(np.float64), axis=axis)
    if sections.overscan_order is not None:
        t = np.arange(level.size, dtype=np.float64)
        level = np.polyval(np.polyfit(t, level, sections.overscan_order), t)
    level = (level[:, None] if axis == 1 else level[None, :]).astype(data.dtype)
    if axis == 1 and level.shape[0] != data.shape[0] or axis == 0 and level.shape[1] != data.shape[1]:
        raise CalibrationError("the overscan section must span every row (or every column) of the frame")
    return data - level


def prepare_raw(data: np.ndarray, sections: Sections | None) -> np.ndarray:
    """Overscan-subtract and trim a raw frame (float32 out)."""
    if sections is None:
        return np.asarray(data, dtype=np.float32)
    # float32 holds 16-bit counts exactly, and an overscan level to 1/256 ADU.
    out = subtract_overscan(np.asarray(data, dtype=np.float32), sections)
    if sections.trim is not None:
        out = out[sections.trim]
        if out.size == 0:
            raise CalibrationError(f"the trim section lies outside the {data.shape} frame")
    return np.asarray(out, dtype=np.float32)


def _load(source: FrameSource) -> Frame:
    return source if isinstance(source, Frame) else read_frame(source)


@contextmanager
def _stack_storage(n: int, shape: tuple[int, int], budget: int) -> Iterator[np.ndarray]:
    if n * shape[0] * shape[1] * 4 <= budget:
        yield np.empty((n, *shape), dtype=np.float32)
        return
    with tempfile.TemporaryDirectory(prefix="datas-stack-") as tmp:
        stack = np.memmap(Path(tmp) / "stack.f32", dtype=np.float32, mode="w+", shape=(n, *shape))
        try:
            yield stack
        finally:
            del stack


def combine_stack(
    stack: np.ndarray, settings: CombineSettings = CombineSettings(), progress: bool = False,
    threads: int | None = None,
) -> tuple[np.ndarray, int]:
    """Sigma-clipped combination of an (n, ny, nx) stack along its first axis.

    Returns the combined float32 image and the number of rejected pixel values. Pixels that
    are NaN in a frame count as missing; a pixel rejected in every frame gets the median.
    Row bands are combined by the compiled kernel (:func:`datas_pipeline.kernels.master_clip`)
    on ``threads`` threads (default: ``DATAS_WORKERS``, else the cores); it releases the GIL,
    and each band is computed as serially.
    """
    n, ny, nx = stack.shape
    values = np.asarray(stack, dtype=np.float32).reshape(n, ny * nx)
    out = np.empty(ny * nx, dtype=np.float32)
    clip = bool(settings.sigma_low or settings.sigma_high)
    arguments = (kernels.network_array(n), settings.center == "median", settings.spread == "mad_std",
                 settings.sigma_low is not None, float(settings.sigma_low or 0.0),
                 settings.sigma_high is not None, float(settings.sigma_high or 0.0),
                 settings.iterations if clip else 0, settings.method == "median", MAD_TO_SIGMA, out)
    step = settings.band_rows * nx
    starts = range(0, ny * nx, step)
    with ThreadPoolExecutor(resolve_jobs(threads)) as pool:
        counts = pool.map(lambda c0: kernels.master_clip(values, c0, min(c0 + step, ny * nx), *arguments), starts)
        rejected = sum(tqdm(counts, total=len(starts), desc="combining", unit="band",
                            disable=None if progress else True, leave=False))
    return out.reshape(ny, nx), int(rejected)


def _combine_frames(
    sources: Sequence[FrameSource],
    prepare: Callable[[Frame], np.ndarray],
    settings: CombineSettings,
    scale: Callable[[np.ndarray], float] | None = None,
    progress: bool = False,
    budget: int = MEMORY_BUDGET_BYTES,
    threads: int | None = None,
) -> tuple[np.ndarray, list[Frame], int]:
    """Read and prepare the frames into a stack (on ``threads`` threads: FITS reads and numpy
    release the GIL) and combine it: the combined image, the frames (headers only after the
    first) and the number of rejected values."""
    if not sources:
        raise CalibrationError("no frames to combine")
    first = _load(sources[0])
    first_data = prepare(first)

    def load(i: int) -> Frame:
        frame = first if i == 0 else _load(sources[i])
        data = first_data if i == 0 else prepare(frame)
        if data.shape != first_data.shape:
            name = frame.path or f"frame {i}"
            raise CalibrationError(f"{name}: shape {data.shape} differs from the first frame's {first_data.shape}")
        if scale is not None:
            factor = scale(data)
            if not np.isfinite(factor) or factor <= 0:
                raise CalibrationError(f"{frame.path or f'frame {i}'}: its median level is not positive, "
                                       f"so it cannot be normalised (an unexposed flat?)")
            data = data * np.float32(factor)
        stack[i] = data
        return frame if i == 0 else Frame(np.empty(0), frame.header, frame.path)

    with _stack_storage(len(sources), first_data.shape, budget) as stack, \
            ThreadPoolExecutor(resolve_jobs(threads)) as pool:
        headers = list(tqdm(pool.map(load, range(len(sources))), total=len(sources), desc="reading", unit="frame",
                            disable=None if progress else True, leave=False))
        combined, rejected = combine_stack(stack, settings, progress=progress, threads=threads)
    return combined, headers, rejected


def _master_header(kind: MasterKind, frames: list[Frame], settings: CombineSettings, rejected: int) -> fits.Header:
    first = frames[0].header
    header = fits.Header()
    for key in IDENTITY_KEYS:
        if key in first:
            header[key] = (first[key], first.comments[key])
    infos = [normalise_header(f.header) for f in frames]
    exposures = [i.exposure_s for i in infos if i.exposure_s is not None]
    if exposures:
        header["EXPTIME"] = (float(np.median(exposures)), "[s] median exposure of the combined frames")
    temps = [i.temperature_c for i in infos if i.temperature_c is not None]
    if temps:
        header["CCD-TEMP"] = (round(float(np.mean(temps)), 3), "[C] mean sensor temperature")
    dates = sorted(i.date_obs for i in infos if i.date_obs is not None)
    if dates:
        header["DATE-OBS"] = (dates[len(dates) // 2].isoformat(timespec="seconds").replace("+00:00", ""),
                              "UTC of the middle frame")
    header["IMAGETYP"] = (f"MASTER {kind.upper()}", "combined calibration frame")
    header["NCOMBINE"] = (len(frames), "frames combined")
    header["COMBINE"] = (f"{settings.method} {settings.center}/{settings.spread} "
                         f"clip {settings.sigma_low},{settings.sigma_high} x{settings.iterations}")
    header["NREJECT"] = (rejected, "pixel values rejected by sigma clipping")
    return header


def build_master_bias(
    sources: Sequence[FrameSource], sections: Sections | None = None,
    settings: CombineSettings = CombineSettings(), progress: bool = False, threads: int | None = None,
) -> Master:
    """Combine bias frames (ADU) into a master bias (on ``threads`` threads, default: the cores)."""
    data, frames, rejected = _combine_frames(sources, lambda f: prepare_raw(f.data, sections), settings,
                                             progress=progress, threads=threads)
    return Master("bias", data, _master_header("bias", frames, settings, rejected))


def build_master_dark(
    sources: Sequence[FrameSource], bias: Master | None = None, sections: Sections | None = None,
    settings: CombineSettings = CombineSettings(), progress: bool = False, threads: int | None = None,
) -> Master:
    """Combine darks into a master dark, bias-subtracted when ``bias`` is given.

    All darks must share one exposure (a master is the dark for one exposure; scaling
    happens when it is applied).
    """
    exposures: set[float | None] = set()

    def prepare(frame: Frame) -> np.ndarray:
        exposure = normalise_header(frame.header).exposure_s
        exposures.add(exposure)
        data = prepare_raw(frame.data, sections)
        return data - _checked(bias, data, frame).data if bias is not None else data

    data, frames, rejected = _combine_frames(sources, prepare, settings, progress=progress, threads=threads)
    known = {e for e in exposures if e is not None}
    if len(known) > 1 and max(known) - min(known) > 1e-3 * max(known):
        raise CalibrationError(f"darks of different exposures cannot make one master: {sorted(known)} s")
    header = _master_header("dark", frames, settings, rejected)
    header["BIASSUB"] = (bias is not None, "master bias already subtracted")
    return Master("dark", data, header)


def build_master_flat(
    sources: Sequence[FrameSource], bias: Master | None = None, dark: Master | None = None,
    sections: Sections | None = None, settings: CombineSettings = CombineSettings(), progress: bool = False,
    threads: int | None = None,
) -> Master:
    """Combine flats into a master flat normalised to mean 1.

    Each flat is bias- and dark-corrected, then divided by its own median so that flats of
    different brightness combine; ``dark`` may be flat-darks of the flats' exposure, or a
    bias-subtracted master dark that is scaled.
    """
    def prepare(frame: Frame) -> np.ndarray:
        return remove_bias_and_dark(prepare_raw(frame.data, sections), frame, bias, dark)

    data, frames, rejected = _combine_frames(
        sources, prepare, settings, scale=lambda a: 1.0 / median(a), progress=progress, threads=threads
    )
    level = float(np.mean(data, dtype=np.float64))
    if not np.isfinite(level) or level <= 0:
        raise CalibrationError(f"the combined flat has mean {level:g}; flats must be exposed, not dark")
    header = _master_header("flat", frames, settings, rejected)
    header["FLATNORM"] = (level, "the combined flat was divided by this mean")
    return Master("flat", (data / level).astype(np.float32), header)


def _checked(master: Master, data: np.ndarray, frame: Frame) -> Master:
    if master.data.shape != data.shape:
        name = frame.path or "the frame"
        raise CalibrationError(
            f"{name}: shape {data.shape} does not match the master {master.kind} {master.data.shape} "
            f"(trim or binning differ)"
        )
    return master


def dark_scale_factor(frame_exposure: float | None, dark: Master) -> float:
    """How much of ``dark`` to subtract from a frame of ``frame_exposure`` seconds."""
    dark_exposure = dark.exposure_s
    if frame_exposure is None or dark_exposure is None:
        if frame_exposure == dark_exposure:
            return 1.0
        raise CalibrationError("the frame or the master dark has no exposure time, so the dark cannot be matched")
    if abs(frame_exposure - dark_exposure) <= 1e-3 * max(dark_exposure, 1e-9):
        return 1.0
    if not dark.bias_subtracted:
        raise CalibrationError(
            f"the master dark ({dark_exposure:g} s) still contains the bias, so it cannot be scaled to "
            f"{frame_exposure:g} s: build it with a master bias, or take darks of {frame_exposure:g} s"
        )
    if dark_exposure <= 0:
        raise CalibrationError("the master dark has zero exposure and cannot be scaled")
    return frame_exposure / dark_exposure


def remove_bias_and_dark(data: np.ndarray, frame: Frame, bias: Master | None, dark: Master | None) -> np.ndarray:
    """Subtract the bias and the (exposure-scaled) dark from prepared data (ADU)."""
    out = np.asarray(data, dtype=np.float32)
    if dark is not None and not dark.bias_subtracted:
        # A dark that includes the bias already removes it: subtracting a bias too would do it twice.
        bias = None
    if bias is not None:
        out = out - _checked(bias, out, frame).data  # a new array: ``data`` is never changed
    if dark is not None:
        factor = dark_scale_factor(normalise_header(frame.header).exposure_s, dark)
        scaled = _checked(dark, out, frame).scaled(factor)
        out = np.subtract(out, scaled, out=out) if bias is not None else out - scaled
    return out


def calibrate_frame(
    frame: Frame,
    bias: Master | None = None,
    dark: Master | None = None,
    flat: Master | None = None,
    sections: Sections | None = None,
    flat_floor: float = 0.05,
) -> Frame:
    """Calibrate a light: overscan, trim, bias, scaled dark, flat. ADU in, ADU out (float32).

    Pixels where the flat response is below ``flat_floor`` (vignetted to nothing, dead) are
    set to NaN rather than amplified into noise.
    """
    data = remove_bias_and_dark(prepare_raw(frame.data, sections), frame, bias, dark)
    header = frame.header.copy()
    if flat is not None:
        data = data / _checked(flat, data, frame).flat_divisor(flat_floor)
    for master in (bias, dark, flat):
        if master is not None:
            name = master.path.name if master.path else "in memory"
            header.add_history(f"DATAS calibrated: master {master.kind} {name}")
    header["CALSTAT"] = ("".join(k for k, m in (("B", bias), ("D", dark), ("F", flat)) if m is not None),
                         "calibrations applied: B bias, D dark, F flat")
    for key in ("BIASSEC", "TRIMSEC", "DATASEC"):
        if sections is not None and key in header:
            header.remove(key)
    return Frame(data=np.asarray(data, dtype=np.float32), header=header, path=frame.path)


def write_master(master: Master, path: str | Path, overwrite: bool = True) -> Path:
    """Write a master as float32 FITS and remember where it lives."""
    master.path = write_frame(path, master.data, master.header, overwrite=overwrite)
    return master.path


def read_master(path: str | Path) -> Master:
    """Read a master written by :func:`write_master` (or any frame whose IMAGETYP says its kind)."""
    frame = read_frame(path)
    kind = normalise_header(frame.header).image_type
    if kind not in ("bias", "dark", "flat"):
        raise CalibrationError(f"{path}: IMAGETYP {frame.header.get('IMAGETYP')!r} is not a bias, dark or flat")
    return Master(kind, frame.data, frame.header, Path(path))
