"""One-dimensional resampling passes, the building blocks of :mod:`datas_pipeline.registration.warp`.

Each pass reads a float32 image along one axis at fractional positions with an interpolation
kernel (``lanczos3``: 6 taps; ``bicubic``: Keys, a = -0.5, 4 taps), weights normalised to sum
to one. A pass is a compiled kernel (Cython, ``_resample.pyx``, GIL released) run over bands
of output rows or columns on two threads. Taps that reach up to ``taps + 2`` px past the source's edge see the
edge repeated; positions further out give 0.

Every kernel takes C-contiguous float32 images, int64 indices and float32 weights.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from datas_pipeline.errors import PipelineError
from datas_pipeline.registration import _resample

KERNELS = ("lanczos3", "bicubic")
_THREADS = min(2, os.cpu_count() or 1)
_MIN_RUN = 16                 # columns per offset, on average, for a y-shear to be done along rows
_COLUMN_STRIP = _resample.COLUMN_STRIP_WIDTH  # columns a steep y-shear turns into rows at a time


def _taps(kernel: str) -> tuple[int, int]:
    """(number of taps, offset of the first tap from floor(position))."""
    if kernel == "lanczos3":
        return 6, -2
    if kernel == "bicubic":
        return 4, -1
    raise PipelineError(f"unknown interpolation kernel {kernel!r}; choose one of {', '.join(KERNELS)}")


def kernel_weights(kernel: str, frac: np.ndarray) -> np.ndarray:
    """Normalised weights (n, taps) for fractional positions ``frac`` in [0, 1)."""
    taps, first = _taps(kernel)
    d = np.asarray(frac, dtype=np.float64)[:, None] - (first + np.arange(taps))[None, :]
    if kernel == "lanczos3":
        w = np.sinc(d) * np.sinc(d / 3.0)
    else:
        a = -0.5
        ad = np.abs(d)
        w = np.where(ad <= 1, (a + 2) * ad**3 - (a + 3) * ad**2 + 1,
                     np.where(ad < 2, a * ad**3 - 5 * a * ad**2 + 8 * a * ad - 4 * a, 0.0))
    return (w / w.sum(axis=1, keepdims=True)).astype(np.float32)


def _first_taps(position: np.ndarray, kernel: str, gain: float) -> tuple[np.ndarray, np.ndarray]:
    """Source index of tap 0 (int64) and the weights (float32, times ``gain``) for each position."""
    _, first = _taps(kernel)
    base = np.floor(position).astype(np.int64)
    return base + first, kernel_weights(kernel, position - base) * np.float32(gain)


_POOL: ThreadPoolExecutor | None = None


def _in_bands(func, n: int) -> None:
    """Call ``func(lo, hi)`` over [0, n) cut into contiguous bands, on the shared worker threads.

    The kernels release the GIL, so the threads run them side by side; a few bands per thread
    even out the work when another process takes a core for a while.
    """
    global _POOL
    pieces = min(n, 4 * _THREADS) if _THREADS > 1 else 1
    edges = np.linspace(0, n, pieces + 1).astype(int)
    bands = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True) if b > a]
    if len(bands) < 2:
        for lo, hi in bands:
            func(lo, hi)
        return
    if _POOL is None:
        _POOL = ThreadPoolExecutor(_THREADS, thread_name_prefix="warp")
    list(_POOL.map(lambda band: func(*band), bands))


def _as_image(a: np.ndarray) -> np.ndarray:
    """The one layout every kernel is compiled for: C-contiguous float32."""
    return np.ascontiguousarray(a, dtype=np.float32)


def shift_rows(src: np.ndarray, start: np.ndarray, width: int, kernel: str, gain: float = 1.0) -> np.ndarray:
    """Resample each row along x: ``out[i, j] = src(i, start[i] + j)`` (positions in px of ``src``)."""
    src = _as_image(src)
    first_col, weights = _first_taps(start, kernel, gain)
    out = np.empty((src.shape[0], width), dtype=np.float32)
    _in_bands(lambda r0, r1: _resample.shift_rows(src, first_col, weights, out, r0, r1), src.shape[0])
    return out


def resample_rows(src: np.ndarray, position: np.ndarray, kernel: str, gain: float = 1.0) -> np.ndarray:
    """Resample along y: output row ``i`` is ``src`` at (fractional) row ``position[i]``."""
    src = _as_image(src)
    first_row, weights = _first_taps(position, kernel, gain)
    out = np.empty((len(position), src.shape[1]), dtype=np.float32)
    _in_bands(lambda r0, r1: _resample.resample_rows(src, first_row, weights, out, r0, r1), len(position))
    return out


def resample_columns(src: np.ndarray, position: np.ndarray, kernel: str, gain: float = 1.0) -> np.ndarray:
    """Resample along x: output column ``j`` is ``src`` at (fractional) column ``position[j]``.

    Fast when neighbouring columns share their integer offset (a scale close to one).
    """
    src = _as_image(src)
    taps, _ = _taps(kernel)
    first_col, weights = _first_taps(position, kernel, gain)
    inside = (first_col >= 0) & (first_col <= src.shape[1] - taps)
    # A new run wherever the offset changes or a column's taps leave the source.
    key = np.where(inside, first_col - np.arange(len(position)), np.iinfo(np.int64).min)
    runs = _runs(key)
    runs = runs[inside[runs[:, 0]]] if len(runs) else runs
    weights_t = np.ascontiguousarray(weights.T)
    edge_cols = np.flatnonzero(~inside).astype(np.int64)
    out = np.empty((src.shape[0], len(position)), dtype=np.float32)
    _in_bands(lambda r0, r1: _resample.resample_columns(src, first_col, weights_t, runs, edge_cols, out, r0, r1),
              src.shape[0])
    return out


def _runs(values: np.ndarray) -> np.ndarray:
    """(n, 2) index ranges [j0, j1) over which ``values`` is constant."""
    if len(values) == 0:
        return np.zeros((0, 2), dtype=np.int64)
    edges = np.concatenate([[0], np.flatnonzero(np.diff(values)) + 1, [len(values)]])
    return np.column_stack([edges[:-1], edges[1:]]).astype(np.int64)


def shift_columns(src: np.ndarray, start: np.ndarray, height: int, kernel: str) -> np.ndarray:
    """Resample each column along y: ``out[i, j] = src(start[j] + i, j)``."""
    src = _as_image(src)
    first_row, weights = _first_taps(start, kernel, 1.0)
    out = np.empty((height, src.shape[1]), dtype=np.float32)
    runs = _runs(first_row)
    if len(runs) * _MIN_RUN <= src.shape[1]:
        weights_t = np.ascontiguousarray(weights.T)
        _in_bands(lambda r0, r1: _resample.shift_column_runs(src, first_row, weights_t, runs, out, r0, r1), height)
        return out
    n_strips = -(-src.shape[1] // _COLUMN_STRIP)

    def strips(s0, s1):
        _resample.shift_columns(src, first_row, weights, out, s0 * _COLUMN_STRIP, min(s1 * _COLUMN_STRIP, src.shape[1]))

    _in_bands(strips, n_strips)
    return out


def turned_copy(image: np.ndarray, e: np.ndarray) -> np.ndarray:
    """A contiguous copy of float32 ``image`` quarter-turned or mirrored: ``out(p) = image(e p)``.

    ``e`` is the 3x3 integer map of :func:`datas_pipeline.registration.warp._exact_turn`,
    ``p = (x, y, 1)``.
    """
    src = _as_image(image)
    e_int = np.rint(e).astype(np.int64)
    shape = src.shape[::-1] if e_int[0, 0] == 0 else src.shape
    out = np.empty(shape, dtype=np.float32)
    _in_bands(lambda r0, r1: _resample.turn(src, e_int, out, r0, r1), shape[0])
    return out
