"""An aligned sequence as the mover search sees it: times, the static sky, and per-frame SNR maps.

The stationary sky (stars, galaxies, static defects) is the per-pixel median of the frames,
computed in row bands so a 200-frame 4k x 4k sequence never sits in memory at once. Each
frame minus that model is a residual; sharp single-frame pixels (cosmic rays, hot pixels
that survive the median) are zeroed, the residual is divided by the per-pixel noise and
convolved with the PSF (the matched filter), giving one map per frame in units of the
point-source SNR. Those maps are all the trackers read; a large sequence keeps them in a
memory-mapped scratch file. Times are in *frame units*: seconds from the first frame
divided by the median cadence, so rates read as px/frame even across gaps.
"""
from __future__ import annotations

import tempfile
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from scipy import ndimage

from datas_pipeline.errors import PipelineError
from datas_pipeline.io.headers import normalise_header
from datas_pipeline.robust import MAD_TO_SIGMA, median_sigma
from datas_pipeline.stacking.combine import FrameSet

Progress = Callable[[str, int, int], None]


class MoverError(PipelineError):
    """The sequence cannot be searched for movers (too few frames, sizes differ, no noise)."""


@dataclass(frozen=True)
class SequenceTimes:
    """Mid-exposure times of the frames.

    ``seconds`` from the first frame's mid-exposure (UTC), ``frame_units`` the same divided
    by the median cadence ``cadence_s``; ``utc`` ISO strings (None when unknown);
    ``source`` is ``"header"`` or ``"order"`` (no usable DATE-OBS: frame order, cadence 1 s).
    """

    seconds: np.ndarray
    frame_units: np.ndarray
    cadence_s: float
    utc: list[str | None]
    mjd: np.ndarray
    source: str


def sequence_times(headers: Sequence[fits.Header | None], n_frames: int) -> SequenceTimes:
    """Mid-exposure times from DATE-OBS + EXPTIME/2, or frame order when any frame lacks them."""
    from astropy.time import Time

    mids = []
    for header in headers if headers else [None] * n_frames:
        mid = normalise_header(header).mid_exposure if header is not None and len(header) else None
        mids.append(mid)
    if n_frames and all(m is not None for m in mids):
        times = Time(mids, scale="utc")
        seconds = (times - times[0]).sec
        steps = np.diff(np.sort(seconds))
        cadence = float(np.median(steps[steps > 0])) if np.any(steps > 0) else 1.0
        if np.unique(seconds).size == n_frames:
            return SequenceTimes(np.asarray(seconds, float), np.asarray(seconds / cadence, float), cadence,
                                 [t.isot + "Z" for t in times], np.asarray(times.mjd, float), "header")
    index = np.arange(n_frames, dtype=float)
    return SequenceTimes(index, index, 1.0, [None] * n_frames, np.full(n_frames, np.nan), "order")


@dataclass
class StaticSky:
    """The stationary model and what the residuals are measured against.

    ``model`` (ADU above each frame's own sky level) is the per-pixel median of all frames,
    the picture of the static sky. Residuals are taken against ``references[block[i]]``:
    the median of the frames at least one time block away from frame i, so a slow mover
    (which a median of all frames partly keeps) is elsewhere in every frame of its
    reference. ``noise_weight`` (>= 1) is the per-pixel noise relative to the sky's, from a
    fit of the temporal scatter to the model's brightness and gradient (shot noise of
    stars, seeing and jitter residuals), so star pixels count for less and a mover cannot
    raise the weight of its own path. ``levels`` and ``sigmas`` are each frame's sky level
    and noise (ADU).
    """

    model: np.ndarray
    references: np.ndarray
    block: np.ndarray
    noise_weight: np.ndarray
    levels: np.ndarray
    sigmas: np.ndarray
    noise_fit: tuple[float, float, float] = (0.0, 0.0, 0.0)


def _band_rows(n_frames: int, nx: int, memory_bytes: int) -> int:
    # The band of all frames plus the medians' working copies, about three times the band.
    return int(max(8, min(4096, memory_bytes // max(1, 3 * 4 * n_frames * nx))))


def reference_blocks(n_used: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Time blocks of the used frames and, per block, the used-frame positions of its reference.

    Six blocks (fewer for short sequences); a block's reference is every block at least two
    away, so a frame and its reference are a sixth of the sequence apart or more.
    """
    n_blocks = int(min(6, max(1, n_used // 4)))
    block = np.minimum(np.arange(n_used) * n_blocks // max(n_used, 1), n_blocks - 1)
    refs = []
    for g in range(n_blocks):
        gap = 2 if n_blocks >= 4 else 1
        chosen = np.abs(block - g) >= gap
        refs.append(np.flatnonzero(chosen) if n_blocks > 1 else np.arange(n_used))
    return block, refs


def _fit_noise(model: np.ndarray, grad2: np.ndarray, spread: np.ndarray) -> tuple[float, float, float]:
    """Least-squares ``spread^2 = a + b model + c grad^2`` with outliers (movers, hits) clipped."""
    design = np.column_stack([np.ones_like(model), np.clip(model, 0, None), grad2])
    target = spread**2
    keep = np.isfinite(target)
    coef = np.array([np.median(target[keep]), 0.0, 0.0])
    for _ in range(3):
        coef, *_ = np.linalg.lstsq(design[keep], target[keep], rcond=None)
        predicted = design @ coef
        keep = np.isfinite(target) & (np.abs(target - predicted) < 3.0 * np.maximum(predicted, 1e-6))
    a, b, c = (float(v) for v in coef)
    return max(a, 1e-12), max(b, 0.0), max(c, 0.0)


def static_sky(frames: FrameSet, use: np.ndarray, memory_bytes: int = 512 * 2**20,
               progress: Progress | None = None) -> StaticSky:
    """Per-pixel medians (all frames, and each time block's reference) and the noise model.

    Parameters
    ----------
    frames : FrameSet
        The aligned frames (arrays or FITS files read by row bands).
    use : numpy.ndarray of bool
        Frames that enter the model (rejected ones do not).
    memory_bytes : int
        Budget for one band of all frames.
    """
    n = len(frames)
    levels, sigmas = np.zeros(n), np.zeros(n)
    for i in range(n):
        levels[i], sigmas[i] = median_sigma(frames.sample(i))
    if not np.all(np.isfinite(sigmas)) or np.any(sigmas[use] <= 0):
        raise MoverError("a frame has no finite pixels or no noise; is it blank or saturated?")
    ny, nx = frames.shape
    index = np.flatnonzero(use)
    block_of_used, refs = reference_blocks(index.size)
    model = np.zeros((ny, nx), np.float32)
    references = np.zeros((len(refs), ny, nx), np.float32)
    samples = []
    rows = _band_rows(index.size, nx, memory_bytes)
    for r0 in range(0, ny, rows):
        r1 = min(ny, r0 + rows)
        band = np.stack([frames.rows(i, r0, r1) - np.float32(levels[i]) for i in index])
        finite = np.isfinite(band).all()
        # nanmedian is ten times slower than a partition: only registration voids need it.
        median = median_first_axis if finite else np.nanmedian
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns (registration voids)
            for g, ref in enumerate(refs):
                references[g, r0:r1] = np.nan_to_num(median(band[ref], axis=0))
            med = median(band, axis=0)
            # The scatter only feeds a smooth fit: every fourth column is plenty.
            sub = np.abs(band[:, :, ::4] - med[:, ::4])
            mad = (median if finite else np.nanmedian)(sub, axis=0) * MAD_TO_SIGMA
        model[r0:r1] = np.nan_to_num(med)
        samples.append((r0, r1, mad))
        if progress:
            progress("static sky", r1, ny)
    gy, gx = np.gradient(model)
    grad2 = gx * gx + gy * gy
    m_s = np.concatenate([model[r0:r1, ::4].ravel() for r0, r1, _ in samples])
    g_s = np.concatenate([grad2[r0:r1, ::4].ravel() for r0, r1, _ in samples])
    s_s = np.concatenate([mad.ravel() for _, _, mad in samples])
    a, b, c = _fit_noise(m_s, g_s, s_s)
    weight = np.sqrt(1.0 + (b * np.clip(model, 0, None) + c * grad2) / a).astype(np.float32)
    # Rejected frames take the reference of the used frame nearest in order.
    nearest = np.clip(np.searchsorted(index, np.arange(n)), 0, index.size - 1)
    return StaticSky(model, references, block_of_used[nearest], weight, levels, sigmas, (a, b, c))


def median_first_axis(values: np.ndarray, axis: int = 0) -> np.ndarray:
    """Median over the first axis by one in-place partition (reorders ``values``; no NaN).

    For an even count the lower middle value is the largest below the partition point,
    which is far cheaper than a second partition.
    """
    n = values.shape[0]
    k = n // 2
    values.partition(k, axis=0)
    upper = values[k]
    if n % 2:
        return upper.copy()
    return 0.5 * (values[:k].max(axis=0) + upper)


def gaussian_sigma(fwhm_px: float) -> float:
    """Gaussian sigma (px) of a PSF with the given FWHM (px)."""
    return float(fwhm_px) / 2.3548


def sharp_pixels(residual: np.ndarray, sigma: float, k: float = 5.0, sharpness: float = 0.6) -> np.ndarray:
    """Pixels far sharper than any PSF: cosmic-ray hits and hot pixels (L.A.Cosmic's idea, simplified).

    A pixel is sharp when it exceeds the mean of its eight neighbours by ``k`` sigma and by
    more than ``sharpness`` of its own value; a star of FWHM >= 2 px exceeds its neighbours
    by at most ~40 % of its peak.
    """
    ny, nx = residual.shape
    hits = np.zeros(residual.shape, bool)
    ys, xs = np.nonzero(residual > k * sigma)
    inner = (ys > 0) & (ys < ny - 1) & (xs > 0) & (xs < nx - 1)
    ys, xs = ys[inner], xs[inner]
    if ys.size == 0:
        return hits
    # Only the few pixels above k sigma can be sharp: compare them with their neighbours.
    neighbours = sum(residual[ys + dy, xs + dx] for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx) / 8.0
    value = residual[ys, xs]
    excess = value - neighbours
    sharp = (excess > k * sigma) & (excess > sharpness * value)
    ys, xs = ys[sharp], xs[sharp]
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            hits[ys + dy, xs + dx] = True
    return hits


@dataclass
class SnrMaps:
    """Matched-filter SNR maps of the residual frames, one per frame (unit variance in noise).

    ``cube`` has shape ``(n_frames, ny, nx)`` (float32; a memory map for large sequences).
    ``used`` marks frames searched; ``sharp_counts`` the cosmic/hot pixels zeroed per frame.
    """

    cube: np.ndarray
    used: np.ndarray
    sharp_counts: np.ndarray
    scale: np.ndarray
    scratch: Path | None = None
    extras: dict = field(default_factory=dict)

    def close(self) -> None:
        """Drop the scratch file of a memory-mapped cube."""
        if self.scratch is not None:
            self.cube = np.zeros((0, 0, 0), np.float32)
            self.scratch.unlink(missing_ok=True)
            self.scratch = None


def new_cube(shape: tuple[int, int, int], memory_bytes: int) -> tuple[np.ndarray, Path | None]:
    """An float32 array of ``shape``: in memory under the budget, else a scratch memory map."""
    size = 4 * int(np.prod(shape))
    if size <= memory_bytes:
        return np.zeros(shape, np.float32), None
    with tempfile.NamedTemporaryFile(prefix="datas-movers-", suffix=".f32", delete=False) as handle:
        path = Path(handle.name)
    return np.memmap(path, dtype=np.float32, mode="w+", shape=shape), path


def residual(frames: FrameSet, sky: StaticSky, i: int, margin: int = 4) -> np.ndarray:
    """Frame ``i`` minus its sky level and its block's reference (ADU).

    Registration voids (NaN), and ``margin`` px around them, become 0.
    """
    ny = frames.shape[0]
    data = frames.rows(i, 0, ny) - np.float32(sky.levels[i]) - sky.references[sky.block[i]]
    void = ~np.isfinite(data)
    if void.any():
        # Resampling rings along the edge of a registration void: blank a margin too.
        data[ndimage.binary_dilation(void, iterations=margin)] = 0.0
    return data


def matched_filter(res: np.ndarray, sigma_adu: float, weight: np.ndarray, psf_sigma: float,
                   border: int, scale: float | None = None) -> tuple[np.ndarray, float]:
    """Noise-weighted residual convolved with a Gaussian PSF, rescaled to unit noise.

    Returns the SNR map and the rescale factor: measured on the map (1 for white Gaussian
    noise) unless ``scale`` is given, as it must be for an image full of stars, whose
    wings would pass for noise.
    """
    z = res / (np.float32(sigma_adu) * weight)
    snr = ndimage.gaussian_filter(z, psf_sigma, mode="constant", truncate=3.0)
    snr *= np.float32(2.0 * np.sqrt(np.pi) * psf_sigma)  # exact for white noise
    if border:
        snr[:border], snr[-border:], snr[:, :border], snr[:, -border:] = 0, 0, 0, 0
    if scale is None:
        inner = snr[border:-border:3, border:-border:3] if border else snr[::3, ::3]
        _, spread = median_sigma(inner)
        scale = spread if np.isfinite(spread) and spread > 0 else 1.0
    snr /= np.float32(scale)
    return snr, float(scale)
