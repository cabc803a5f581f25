"""Stack registered frames into a master: normalisation, weights, rejection, in a memory budget.

``stack_frames(sources, StackOptions(...))`` combines N frames of one filter that are
already on a common grid (NaN where a frame does not cover). Frames may be arrays or FITS
paths; paths are opened once and read in row bands, so N frames larger than RAM stack
within ``StackOptions.memory`` bytes (ccdproc re-reads every file for every chunk; we do
not; nor do we memory-map them, whose pages would count against the budget). Rejection
methods are Siril's (:mod:`datas_pipeline.stacking.rejection`). Everything is
float32. The result carries the master, a count-of-frames map and low/high rejection maps,
and a FITS header recording what went in and how; :func:`write_master` writes all four.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from datas_pipeline.errors import FrameReadError, StackingError
from datas_pipeline.io.fits import STRUCTURAL_KEYWORDS, merged_header, select_image_hdu
from datas_pipeline.robust import median_sigma
from datas_pipeline.stacking.rejection import METHODS, combine_columns

# Matching both level and dispersion has one affine solution, so "multiplicative with
# scaling" would be the same map as additive_scale; it is not offered twice.
NORMALIZATIONS = ("none", "additive", "multiplicative", "additive_scale")
WEIGHTINGS = ("none", "noise", "fwhm")
_CHUNK_PIXELS = 1 << 15
_WORK_FACTOR = 7          # bytes of scratch per stacked value while a chunk is combined (x4 B)
_OUTPUT_BYTES = 10        # master float32 + three int16 maps, per pixel
_SAMPLE_PIXELS = 16_384
_MAX_BAND_BYTES = 512 << 20  # a bigger band buys nothing and walks memory further per chunk


def parse_memory(text: str | int) -> int:
    """Bytes from ``'2GB'``, ``'512MB'``, ``'1.5G'`` or a plain number of bytes."""
    if isinstance(text, int):
        return text
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)i?[bB]?\s*", str(text))
    if not match:
        raise StackingError(f"cannot read memory size {text!r}; write it like 2GB, 512MB or 800000000")
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


@dataclass(frozen=True)
class StackOptions:
    """How to stack.

    Attributes
    ----------
    method : str
        One of ``mean, median, sigma, winsorized, percentile, minmax``.
    low, high : float
        Clipping limits: sigmas for ``sigma``/``winsorized``, fractions of the median for
        ``percentile``, numbers of values for ``minmax``.
    normalization : str
        One of :data:`NORMALIZATIONS`: match each frame's background level to the reference
        frame's by an offset (``additive``) or a factor (``multiplicative``), or match level
        and dispersion both (``additive_scale``, Siril's addscale).
    weights : str
        ``none``, ``noise`` (1 / background variance after normalisation) or ``fwhm``
        (1 / FWHM^2, from the ``fwhm`` argument, the FWHM header keyword, or measured).
    memory : int
        Budget in bytes for the data the stack holds (bands, scratch and outputs).
    reference : int
        Index of the frame whose level and scale the others are normalised to.
    """

    method: str = "winsorized"
    low: float = 3.0
    high: float = 3.0
    normalization: str = "additive"
    weights: str = "none"
    memory: int = 2 << 30
    reference: int = 0
    max_iterations: int = 10


@dataclass
class FrameStats:
    """Per-frame statistics and the affine normalisation ``a * value + b``."""

    location: float
    scale: float
    fwhm: float = float("nan")
    weight: float = 1.0
    a: float = 1.0
    b: float = 0.0


@dataclass
class StackResult:
    """The master and its maps (count and rejections are per pixel, int16)."""

    image: np.ndarray
    count: np.ndarray
    rejected_low: np.ndarray
    rejected_high: np.ndarray
    header: fits.Header
    stats: list[FrameStats] = field(default_factory=list)
    bands: int = 1


class FrameSet:
    """Frames to stack, from arrays or FITS paths; files stay open and are read by row bands."""

    def __init__(self, sources: Sequence[np.ndarray | str | Path]):
        if len(sources) == 0:
            raise StackingError("no frames to stack")
        self._arrays: list[np.ndarray | None] = []
        self._hdus: list = []
        self._files: list = []
        self.names: list[str] = []
        self.headers: list[fits.Header] = []
        shapes = set()
        for i, source in enumerate(sources):
            if isinstance(source, (str, Path)):
                hdu, header = self._open(Path(source))
                self._arrays.append(None)
                self._hdus.append(hdu)
                self.names.append(Path(source).name)
                self.headers.append(header)
                shape = tuple(hdu.shape)
            else:
                array = np.asarray(source)
                self._arrays.append(array)
                self._hdus.append(None)
                self.names.append(f"array{i}")
                self.headers.append(fits.Header())
                shape = array.shape
            if len(shape) != 2:
                self.close()
                raise StackingError(f"{self.names[-1]}: expected a 2-D frame, got shape {shape} "
                                    "(stack colour planes one at a time)")
            shapes.add(shape)
        if len(shapes) > 1:
            self.close()
            raise StackingError(f"frames differ in size {sorted(shapes)}: register them onto one grid first")
        self.shape = shapes.pop()

    def _open(self, path: Path) -> tuple[fits.ImageHDU, fits.Header]:
        """The image HDU read_frame would read, and its merged (inherited) header."""
        if not path.is_file():
            self.close()
            raise FrameReadError(f"{path}: no such file")
        try:
            # Not memory-mapped: mapped file pages count against the process and would
            # break the memory budget; sections read just the rows asked for.
            hdul = fits.open(path, memmap=False)
        except (OSError, ValueError) as exc:
            self.close()
            raise FrameReadError(f"{path}: not a readable FITS image ({exc})") from None
        self._files.append(hdul)
        try:
            index = select_image_hdu(hdul, None, path)
        except FrameReadError:
            self.close()
            raise
        return hdul[index], merged_header(hdul, index)

    def __len__(self) -> int:
        return len(self._arrays)

    def rows(self, i: int, r0: int, r1: int, out: np.ndarray | None = None) -> np.ndarray:
        """Rows ``r0:r1`` of frame ``i`` as float32, written into ``out`` when given (the
        file's big-endian values are converted once, straight into it)."""
        source = self._arrays[i] if self._arrays[i] is not None else self._hdus[i].section
        if out is None:
            return np.asarray(source[r0:r1], dtype=np.float32)
        out[...] = source[r0:r1]
        return out

    def sample(self, i: int, loaded: np.ndarray | None = None) -> np.ndarray:
        """A regular subsample of frame ``i`` (about 16k pixels), finite values only; taken
        from ``loaded`` (the whole frame, already read) when given."""
        step = max(1, int(np.sqrt(self.shape[0] * self.shape[1] / _SAMPLE_PIXELS)))
        if loaded is not None:
            data = loaded[::step, ::step]
        elif self._arrays[i] is not None:
            data = self._arrays[i][::step, ::step]
        else:
            data = self._hdus[i].section[::step][:, ::step]
        data = np.asarray(data, dtype=np.float32).ravel()
        return data[np.isfinite(data)]

    def centre(self, i: int, size: int = 1024) -> np.ndarray:
        """The central ``size`` x ``size`` crop of frame ``i`` (for measuring FWHM)."""
        ny, nx = self.shape
        r0, c0 = max(0, (ny - size) // 2), max(0, (nx - size) // 2)
        return self.rows(i, r0, min(ny, r0 + size))[:, c0:c0 + size]

    def close(self) -> None:
        for hdul in self._files:
            hdul.close()
        self._files = []


def measure_fwhm(image: np.ndarray) -> float:
    """Median FWHM (px) of the well-measured stars, by the shared extraction."""
    from datas_pipeline.detection.extract import extract_sources

    data = np.nan_to_num(image, nan=float(np.nanmedian(image)))
    sources = extract_sources(data, threshold_sigma=10.0, max_sources=200)
    good = sources[(sources["flag"] == 0) & (sources["elongation"] < 1.5)]
    return float(np.median(good["fwhm"])) if len(good) >= 3 else float("nan")


def frame_statistics(frames: FrameSet, options: StackOptions, fwhm: Sequence[float] | None = None,
                     loaded: np.ndarray | None = None) -> list[FrameStats]:
    """Location (median), scale (MAD as sigma), weights and normalisation for every frame
    (sampled from ``loaded``, the (n, ny, nx) frames, when they are already read)."""
    stats = []
    for i in range(len(frames)):
        sample = frames.sample(i, None if loaded is None else loaded[i])
        if sample.size == 0:
            raise StackingError(f"{frames.names[i]} has no finite pixels")
        location, scale = median_sigma(sample)
        stats.append(FrameStats(location, max(scale, 1e-12)))
    if not 0 <= options.reference < len(stats):
        raise StackingError(f"reference frame {options.reference} is outside 0..{len(stats) - 1}")
    ref = stats[options.reference]
    for st in stats:
        mode = options.normalization
        if mode == "multiplicative" and (st.location <= 0 or ref.location <= 0):
            raise StackingError("multiplicative normalisation needs positive backgrounds; "
                                "use --normalization additive")
        if mode == "additive":
            st.a, st.b = 1.0, ref.location - st.location
        elif mode == "multiplicative":
            st.a, st.b = ref.location / st.location, 0.0
        elif mode == "additive_scale":
            st.a = ref.scale / st.scale
            st.b = ref.location - st.a * st.location
        elif mode != "none":
            raise StackingError(f"unknown normalisation {mode!r}; choose one of {', '.join(NORMALIZATIONS)}")
    if options.weights == "noise":
        for st in stats:
            st.weight = 1.0 / (st.a * st.scale) ** 2
    elif options.weights == "fwhm":
        for i, st in enumerate(stats):
            if fwhm is not None:
                st.fwhm = float(fwhm[i])
            elif "FWHM" in frames.headers[i]:
                st.fwhm = float(frames.headers[i]["FWHM"])
            else:
                st.fwhm = measure_fwhm(frames.centre(i))
            if not np.isfinite(st.fwhm) or st.fwhm <= 0:
                raise StackingError(f"{frames.names[i]}: no FWHM for weighting (too few stars); "
                                    "use --weights noise or none")
            st.weight = 1.0 / st.fwhm**2
    elif options.weights != "none":
        raise StackingError(f"unknown weighting {options.weights!r}; choose one of {', '.join(WEIGHTINGS)}")
    mean_weight = float(np.mean([st.weight for st in stats]))
    for st in stats:
        st.weight /= mean_weight
    return stats


def plan_bands(n_frames: int, shape: tuple[int, int], memory: int, threads: int) -> tuple[int, int]:
    """Rows per band and pixels per chunk that keep the stack within ``memory`` bytes."""
    ny, nx = shape
    chunk = _CHUNK_PIXELS
    fixed = _OUTPUT_BYTES * ny * nx
    scratch = threads * n_frames * chunk * 4 * _WORK_FACTOR
    per_row = (n_frames + 1) * nx * 4
    while fixed + scratch + per_row > memory and chunk > 1024:
        chunk //= 2
        scratch = threads * n_frames * chunk * 4 * _WORK_FACTOR
    if fixed + scratch + per_row > memory:
        need = fixed + scratch + per_row
        raise StackingError(f"memory budget {memory / 2**20:.0f} MB is below the {need / 2**20:.0f} MB needed "
                            f"for {n_frames} frames of {nx}x{ny}")
    rows = int(min(ny, (memory - fixed - scratch) // per_row, max(1, _MAX_BAND_BYTES // per_row)))
    return rows, chunk


def _header(frames: FrameSet, options: StackOptions, stats: list[FrameStats], result: StackResult) -> fits.Header:
    header = fits.Header()
    for card in frames.headers[options.reference].cards:
        if card.keyword not in STRUCTURAL_KEYWORDS:
            header[card.keyword] = (card.value, card.comment)
    exposures = [h.get("EXPTIME") for h in frames.headers]
    if all(isinstance(e, (int, float)) for e in exposures):
        header["TOTEXP"] = (float(np.sum(exposures)), "[s] summed exposure of the stacked frames")
    values = len(frames) * frames.shape[0] * frames.shape[1]
    rejected = float(result.rejected_low.sum(dtype=np.int64) + result.rejected_high.sum(dtype=np.int64))
    header["NCOMBINE"] = (len(frames), "frames stacked")
    header["STACKMTH"] = (options.method, "combination / rejection method")
    header["STKREJLO"] = (options.low, "low rejection limit")
    header["STKREJHI"] = (options.high, "high rejection limit")
    header["STKNORM"] = (options.normalization, "normalisation to the reference frame")
    header["STKREF"] = (options.reference, "index of the normalisation reference")
    header["STKWEIGH"] = (options.weights, "frame weighting")
    header["STKREJFR"] = (round(rejected / max(values, 1), 6), "fraction of values rejected")
    header["STKMEMBY"] = (options.memory, "[byte] memory budget")
    header["STKBANDS"] = (result.bands, "row bands the stack was computed in")
    for i, (name, st) in enumerate(zip(frames.names, stats, strict=True), start=1):
        header[f"IMCMB{i:03d}"] = (name[:68], "input frame")
        header[f"STKW{i:04d}"] = (round(st.weight, 6), f"weight of frame {i}")
    header["HISTORY"] = f"DATAS datas_pipeline.stacking.combine: {options.method} of {len(frames)} frames, " \
                        f"normalisation {options.normalization}, weights {options.weights}"
    return header


def stack_frames(
    sources: Sequence[np.ndarray | str | Path],
    options: StackOptions | None = None,
    fwhm: Sequence[float] | None = None,
    progress: Callable[[int], None] | None = None,
    threads: int | None = None,
) -> StackResult:
    """Stack registered frames (see the module docstring).

    Parameters
    ----------
    sources : sequence of 2-D arrays or FITS paths
        Frames on one grid, NaN where uncovered.
    options : StackOptions
        Method, limits, normalisation, weights and memory budget.
    fwhm : sequence of float, optional
        Per-frame FWHM (px) for ``weights='fwhm'``, e.g. from the frame grades.
    progress : callable, optional
        Called with the number of rows finished after each band.
    threads : int, optional
        Worker threads (default: up to 2).

    Returns
    -------
    StackResult
    """
    options = options or StackOptions()
    if not (np.isfinite(options.low) and np.isfinite(options.high)) or min(options.low, options.high) < 0:
        raise StackingError(f"rejection limits must be finite and not negative, not low={options.low} "
                            f"high={options.high}")
    if options.method not in METHODS:
        raise StackingError(f"unknown stacking method {options.method!r}; choose one of {', '.join(METHODS)}")
    if options.method == "gesd" and not (0 < options.low < 1 and 0 < options.high < 1):
        raise StackingError(f"gesd takes the largest outlier fraction as --low and the significance as --high, "
                            f"both between 0 and 1 (e.g. 0.3 0.05), not {options.low} {options.high}")
    threads = threads or min(2, os.cpu_count() or 1)
    frames = FrameSet(sources)
    try:
        ny, nx = frames.shape
        n = len(frames)
        rows, chunk = plan_bands(n, frames.shape, options.memory, threads)
        buffer = np.empty((n, rows, nx), dtype=np.float32)
        with ThreadPoolExecutor(threads) as pool:
            # Frames that fit in one band are read once (file reads and byte swaps release the
            # GIL, so two threads read two files), and sampled for their statistics in memory.
            whole = rows >= ny

            def load(i: int) -> None:
                frames.rows(i, 0, ny, out=buffer[i])

            if whole:
                list(pool.map(load, range(n)))
            stats = frame_statistics(frames, options, fwhm, loaded=buffer if whole else None)
            image = np.empty((ny, nx), dtype=np.float32)
            count = np.empty((ny, nx), dtype=np.int16)
            low = np.empty((ny, nx), dtype=np.int16)
            high = np.empty((ny, nx), dtype=np.int16)
            weights = np.array([st.weight for st in stats], dtype=np.float32)
            bands = 0
            for r0 in range(0, ny, rows):
                r1 = min(ny, r0 + rows)
                band = buffer[:, : r1 - r0]

                def prepare(i: int, band=band, r0=r0, r1=r1) -> None:
                    # Reads, byte swaps and the normalisation release the GIL: frames on the threads.
                    if not whole:
                        frames.rows(i, r0, r1, out=band[i])
                    if stats[i].a != 1.0:
                        band[i] *= np.float32(stats[i].a)
                    if stats[i].b != 0.0:
                        band[i] += np.float32(stats[i].b)

                list(pool.map(prepare, range(n)))
                flat = band.reshape(n, -1)
                outputs = [a[r0:r1].reshape(-1) for a in (image, count, low, high)]

                def work(c0, flat=flat, outputs=outputs):
                    combine_columns(flat, c0, min(c0 + chunk, flat.shape[1]), weights, options.method, options.low,
                                    options.high, options.max_iterations, outputs)

                list(pool.map(work, range(0, flat.shape[1], chunk)))
                bands += 1
                if progress:
                    progress(r1 - r0)
        result = StackResult(image, count, low, high, fits.Header(), stats, bands)
        result.header = _header(frames, options, stats, result)
        return result
    finally:
        frames.close()


def write_master(path: str | Path, result: StackResult, overwrite: bool = False) -> Path:
    """Write the master (primary HDU) and its COUNT, REJLOW and REJHIGH maps as extensions."""
    path = Path(path)
    hdus = fits.HDUList([
        fits.PrimaryHDU(result.image.astype(np.float32), header=result.header),
        fits.ImageHDU(result.count, name="COUNT"),
        fits.ImageHDU(result.rejected_low, name="REJLOW"),
        fits.ImageHDU(result.rejected_high, name="REJHIGH"),
    ])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        hdus.writeto(path, overwrite=overwrite)
    except OSError as exc:
        raise StackingError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path
