"""Control stars for registration: the brightest point sources, centred to a few hundredths of a px.

Registration needs only the positions of the brightest stars, not the photometry and shapes
of all of them, so this is a fast path beside :func:`datas_pipeline.detection.extract.extract_sources` (the
shared extraction, which registration also accepts): local maxima of block maxima above a
coarse background, hot pixels and cosmic rays refused by their size and shape, centres from
a Gaussian-windowed centroid (SExtractor's XWIN iteration). At 4096² it costs a few tens of
ms where a full extraction costs most of a second.

Tables have the fields of :data:`CONTROL_DTYPE`, brightest first; coordinates 0-based numpy
order (``x`` column, ``y`` row), ``flux`` in image units summed over the stamp.
"""
from __future__ import annotations

import numpy as np
import sep

from datas_pipeline.errors import PipelineError

CONTROL_DTYPE = [("x", "f8"), ("y", "f8"), ("flux", "f8"), ("peak", "f8"), ("fwhm", "f8")]

_BLOCK = 8            # px; one candidate per block, so two stars closer than this may merge
_MAX_BG_PIXELS = 512 * 512


def _coarse_background(data: np.ndarray) -> tuple[np.ndarray, int, float]:
    """Background on a pixel subsample: (map at the subsample's resolution, stride, rms).

    Subsampling (not binning) keeps the per-pixel noise of the full frame, so ``rms`` is the
    noise of one full-resolution pixel.
    """
    ny, nx = data.shape
    stride = max(1, int(np.ceil(np.sqrt(ny * nx / _MAX_BG_PIXELS))))
    sub = np.ascontiguousarray(data[::stride, ::stride], dtype=np.float32)
    box = int(max(8, min(64, min(sub.shape) // 4)))
    bkg = sep.Background(sub, bw=box, bh=box, fw=3, fh=3)
    return bkg.back(), stride, float(bkg.globalrms)


def _block_peaks(data: np.ndarray) -> tuple[np.ndarray, int, int]:
    """The brightest value of every ``_BLOCK`` x ``_BLOCK`` block: (map, blocks down, blocks across)."""
    ny, nx = data.shape
    b = _BLOCK
    nby, nbx = ny // b, nx // b
    # Reducing along a short contiguous axis is slow in numpy; reduce whole rows instead.
    row_max = data[: nby * b].reshape(nby, b, nx).max(axis=1)
    cells = row_max[:, : nbx * b].reshape(nby, nbx, b)
    peak = cells[:, :, 0].copy()
    for k in range(1, b):
        np.maximum(peak, cells[:, :, k], out=peak)
    return peak, nby, nbx


def _stamps(data: np.ndarray, rows: np.ndarray, cols: np.ndarray, half: int) -> np.ndarray:
    """Square stamps of side ``2 half + 1`` centred on integer ``rows, cols``: (K, n, n)."""
    offsets = np.arange(-half, half + 1)
    rr = rows[:, None, None] + offsets[None, :, None]
    cc = cols[:, None, None] + offsets[None, None, :]
    return data[rr, cc].astype(np.float64)


def windowed_centroids(
    stamps: np.ndarray, x0: np.ndarray, y0: np.ndarray, sigma: float, iterations: int = 6
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids (SExtractor XWIN) of background-free ``stamps``.

    ``x0, y0`` are the first guesses in stamp coordinates (px from the stamp's corner); the
    window has standard deviation ``sigma`` px. Returns refined stamp coordinates.
    """
    n = stamps.shape[1]
    grid = np.arange(n, dtype=np.float64)
    x, y = x0.astype(np.float64).copy(), y0.astype(np.float64).copy()
    for _ in range(iterations):
        dx = grid[None, None, :] - x[:, None, None]
        dy = grid[None, :, None] - y[:, None, None]
        weight = np.exp(-(dx * dx + dy * dy) / (2.0 * sigma * sigma)) * stamps
        total = weight.sum(axis=(1, 2))
        ok = total > 0
        safe = np.where(ok, total, 1.0)
        step_x = 2.0 * (weight * dx).sum(axis=(1, 2)) / safe
        step_y = 2.0 * (weight * dy).sum(axis=(1, 2)) / safe
        # A step larger than the window means the stamp is noise; stay put rather than wander.
        step_x = np.where(ok, np.clip(step_x, -sigma, sigma), 0.0)
        step_y = np.where(ok, np.clip(step_y, -sigma, sigma), 0.0)
        x += step_x
        y += step_y
    return x, y


def find_control_stars(
    image: np.ndarray,
    max_stars: int = 200,
    threshold_sigma: float = 8.0,
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """The brightest ``max_stars`` point sources of ``image``, for registration.

    Parameters
    ----------
    image : 2-D array
        The frame (ADU or any linear unit). NaN pixels are ignored.
    max_stars : int
        How many to return at most, brightest first.
    threshold_sigma : float
        A candidate's peak must stand this many background-noise sigmas above the background.
    mask : 2-D bool array, optional
        True where pixels must be ignored (bad columns, a known satellite trail).

    Returns
    -------
    Structured array with :data:`CONTROL_DTYPE` fields, brightest first. ``fwhm`` (px) is
    from second moments and only good enough to tell stars from hot pixels.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise PipelineError(f"expected a 2-D image, got an array of shape {data.shape}")
    if data.shape[0] < 4 * _BLOCK or data.shape[1] < 4 * _BLOCK:
        raise PipelineError(f"image {data.shape} is too small to find stars in")
    peak, nby, nbx = _block_peaks(data)
    # Block maxima propagate NaN, so a full scan for blank pixels is only needed if one is there.
    if mask is not None or not np.isfinite(peak).all():
        bad = ~np.isfinite(data)
        if mask is not None:
            bad |= np.asarray(mask, dtype=bool)
        data = np.where(bad, np.float32(np.nanmedian(data[::4, ::4])), data)
        peak, nby, nbx = _block_peaks(data)
    back, stride, rms = _coarse_background(data)
    # Background under each block, looked up on the subsample grid.
    by = np.minimum(((np.arange(nby) + 0.5) * _BLOCK / stride).astype(int), back.shape[0] - 1)
    bx = np.minimum(((np.arange(nbx) + 0.5) * _BLOCK / stride).astype(int), back.shape[1] - 1)
    block_back = back[by[:, None], bx[None, :]]
    height = peak - block_back
    candidates = np.flatnonzero(height.ravel() > threshold_sigma * max(rms, 1e-12))
    if candidates.size == 0:
        return np.zeros(0, dtype=CONTROL_DTYPE)
    keep = min(candidates.size, 4 * max_stars)
    order = np.argsort(-height.ravel()[candidates], kind="stable")[:keep]
    candidates = candidates[order]
    cb_y, cb_x = np.divmod(candidates, nbx)
    # Where in its block the maximum sits.
    blocks = data[: nby * _BLOCK, : nbx * _BLOCK].reshape(nby, _BLOCK, nbx, _BLOCK)
    cells = blocks[cb_y, :, cb_x, :].reshape(len(candidates), -1)
    arg = cells.argmax(axis=1)
    rows = cb_y * _BLOCK + arg // _BLOCK
    cols = cb_x * _BLOCK + arg % _BLOCK
    half = 5
    ny, nx = data.shape
    inside = (rows >= half) & (rows < ny - half) & (cols >= half) & (cols < nx - half)
    rows, cols, candidates = rows[inside], cols[inside], candidates[inside]
    if rows.size == 0:
        return np.zeros(0, dtype=CONTROL_DTYPE)
    local_back = back[np.minimum(rows // stride, back.shape[0] - 1), np.minimum(cols // stride, back.shape[1] - 1)]
    stamps = _stamps(data, rows, cols, half) - local_back[:, None, None]
    centre = stamps[:, half, half]
    # A true local maximum only: the same star seen from a neighbouring block is not one.
    is_peak = centre >= stamps[:, half - 1:half + 2, half - 1:half + 2].reshape(len(rows), -1).max(axis=1)
    # Hot pixels and cosmic rays are sharper than any star the optics can make: their
    # neighbours hold almost nothing of the peak.
    neighbours = (stamps[:, half - 1, half] + stamps[:, half + 1, half] + stamps[:, half, half - 1]
                  + stamps[:, half, half + 1]) / 4.0
    sharp = neighbours < 0.12 * centre
    good = is_peak & ~sharp
    rows, cols, stamps, centre = rows[good], cols[good], stamps[good], centre[good]
    if rows.size == 0:
        return np.zeros(0, dtype=CONTROL_DTYPE)
    # Second moments of the positive core give size and shape.
    grid = np.arange(2 * half + 1, dtype=np.float64) - half
    core = np.where(stamps > 0.1 * centre[:, None, None], stamps, 0.0)
    total = core.sum(axis=(1, 2))
    mx = (core * grid[None, None, :]).sum(axis=(1, 2)) / total
    my = (core * grid[None, :, None]).sum(axis=(1, 2)) / total
    dxg = grid[None, None, :] - mx[:, None, None]
    dyg = grid[None, :, None] - my[:, None, None]
    xx = (core * dxg**2).sum(axis=(1, 2)) / total
    yy = (core * dyg**2).sum(axis=(1, 2)) / total
    xy = (core * dxg * dyg).sum(axis=(1, 2)) / total
    spread = np.sqrt(np.maximum((xx - yy) ** 2 / 4 + xy**2, 0))
    major = np.sqrt(np.maximum((xx + yy) / 2 + spread, 1e-6))
    minor = np.sqrt(np.maximum((xx + yy) / 2 - spread, 1e-6))
    # Moments clipped at 10 % of the peak under-read sigma; 2.9 maps them back to a Gaussian FWHM.
    fwhm = 2.9 * np.sqrt(major * minor)
    round_enough = major / minor < 2.5
    rows, cols, stamps, fwhm = rows[round_enough], cols[round_enough], stamps[round_enough], fwhm[round_enough]
    if rows.size == 0:
        return np.zeros(0, dtype=CONTROL_DTYPE)
    sigma = float(np.clip(np.median(fwhm) / 2.3548, 0.6, half / 2.0))
    start = np.full(len(rows), float(half))
    # The stamp is centred on a local maximum, so anything brighter in it is another object (a
    # neighbour, a hot pixel) that would drag the centroid.
    clean = np.where(stamps > stamps[:, half:half + 1, half:half + 1], 0.0, np.clip(stamps, 0, None))
    sx, sy = windowed_centroids(clean, start, start, sigma)
    table = np.zeros(len(rows), dtype=CONTROL_DTYPE)
    table["x"] = cols - half + sx
    table["y"] = rows - half + sy
    table["flux"] = stamps.sum(axis=(1, 2))
    table["peak"] = stamps[:, half, half]
    table["fwhm"] = fwhm
    table = table[np.argsort(-table["flux"], kind="stable")]
    return _drop_duplicates(table, min_separation=2.0)[:max_stars]


def _drop_duplicates(table: np.ndarray, min_separation: float) -> np.ndarray:
    """Keep the brighter of any two entries closer than ``min_separation`` px (saturated cores)."""
    if len(table) < 2:
        return table
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([table["x"], table["y"]]))
    pairs = tree.query_pairs(min_separation, output_type="ndarray")
    if len(pairs) == 0:
        return table
    drop = np.zeros(len(table), dtype=bool)
    # Table is brightest first, so the larger index of each pair is the fainter one.
    drop[pairs.max(axis=1)] = True
    return table[~drop]
