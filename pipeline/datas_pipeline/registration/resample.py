"""One-dimensional resampling passes, the building blocks of :mod:`datas_pipeline.registration.warp`.

Each pass reads a float32 image along one axis at fractional positions with an interpolation
kernel (``lanczos3``: 6 taps; ``bicubic``: Keys, a = -0.5, 4 taps), weights normalised to sum
to one. A pass is a compiled kernel (numba, GIL released) run over bands of output rows or
columns on two threads. Taps that reach up to ``taps + 2`` px past the source's edge see the
edge repeated; positions further out give 0.

Every kernel is called with C-contiguous float32 images, int64 indices and float32 weights, so
each compiles once (about a second, then cached beside this file).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from datas_pipeline.errors import PipelineError

KERNELS = ("lanczos3", "bicubic")
_THREADS = min(2, os.cpu_count() or 1)
_MIN_RUN = 16                 # columns per offset, on average, for a y-shear to be done along rows
_COLUMN_STRIP = 128           # columns a y-shear turns into rows at a time (whole cache lines, prefetched)


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


# Loops in the kernels run over slices from index 0: numba then knows the index is not
# negative, drops its wrap-around test, and LLVM vectorises the loop (4x faster).


@numba.njit(cache=True, nogil=True)
def _taps_along(out, line, weights, n):
    """out[j] = sum_k weights[k] line[j + k] for j < n: one output run whose taps are all inside ``line``."""
    w0 = weights[0]
    for j in range(n):
        out[j] = w0 * line[j]
    for k in range(1, weights.shape[0]):
        wk = weights[k]
        shifted = line[k:]
        for j in range(n):
            out[j] += wk * shifted[j]


@numba.njit(cache=True, nogil=True)
def _zones(start, n_out, n_in, taps):
    """Output index bounds (z0, lo, hi, z1) for tap 0 at ``start + index``: zeros before z0 and
    from z1, the edge repeated in [z0, lo) and [hi, z1), every tap inside the source in [lo, hi)."""
    pad = taps + 2
    z0 = min(max(-pad - start, 0), n_out)
    lo = min(max(-start, z0), n_out)
    hi = min(max(n_in - taps + 1 - start, lo), n_out)
    z1 = min(max(n_in - taps + 1 + pad - start, hi), n_out)
    return z0, lo, hi, z1


@numba.njit(cache=True, nogil=True)
def _clamped_sum(line, start, weights):
    """sum_k weights[k] line[start + k], the edge repeated for taps outside ``line``."""
    n_in = line.shape[0]
    acc = weights[0] * line[min(max(start, 0), n_in - 1)]
    for k in range(1, weights.shape[0]):
        acc += weights[k] * line[min(max(start + k, 0), n_in - 1)]
    return acc


@numba.njit(cache=True, nogil=True)
def _shift_line(out, line, c, weights):
    """out[j] = sum_k weights[k] line[c + j + k]: one row (or column) of a shear."""
    width = out.shape[0]
    z0, lo, hi, z1 = _zones(c, width, line.shape[0], weights.shape[0])
    out[:z0] = 0.0
    for j in range(z0, lo):
        out[j] = _clamped_sum(line, c + j, weights)
    if hi > lo:
        _taps_along(out[lo:hi], line[c + lo:], weights, hi - lo)
    for j in range(hi, z1):
        out[j] = _clamped_sum(line, c + j, weights)
    out[z1:] = 0.0


@numba.njit(cache=True, nogil=True)
def _shift_rows_kernel(src, first_col, weights, out, r0, r1):
    """out[i, j] = sum_k weights[i, k] src[i, first_col[i] + j + k] for rows [r0, r1)."""
    for i in range(r0, r1):
        _shift_line(out[i], src[i], first_col[i], weights[i])


@numba.njit(cache=True, nogil=True)
def _resample_rows_kernel(src, first_row, weights, out, r0, r1):
    """out[i, :] = sum_k weights[i, k] src[first_row[i] + k, :] for output rows [r0, r1)."""
    n_in = src.shape[0]
    width = out.shape[1]
    taps = weights.shape[1]
    pad = taps + 2
    for i in range(r0, r1):
        s = first_row[i]
        o = out[i]
        if s < -pad or s >= n_in - taps + 1 + pad:
            o[:] = 0.0
            continue
        w0 = weights[i, 0]
        line = src[min(max(s, 0), n_in - 1)]
        for j in range(width):
            o[j] = w0 * line[j]
        for k in range(1, taps):
            wk = weights[i, k]
            line = src[min(max(s + k, 0), n_in - 1)]
            for j in range(width):
                o[j] += wk * line[j]


@numba.njit(cache=True, nogil=True)
def _resample_columns_kernel(src, first_col, weights, runs, edge_cols, out, r0, r1):
    """out[i, j] = sum_k weights[k, j] src[i, first_col[j] + k] for rows [r0, r1).

    ``runs`` (n, 2) are column ranges [j0, j1) with all taps inside the source and one offset
    ``first_col[j] - j`` each; ``edge_cols`` are the other columns, done tap by tap with the
    edge repeated (0 beyond reach). ``weights`` is (taps, columns).
    """
    taps = weights.shape[0]
    pad = taps + 2
    n_in = src.shape[1]
    for i in range(r0, r1):
        line = src[i]
        o = out[i]
        for r in range(runs.shape[0]):
            j0, j1 = runs[r, 0], runs[r, 1]
            n = j1 - j0
            seg = o[j0:j1]
            shifted = line[first_col[j0]:]
            w = weights[0, j0:j1]
            for j in range(n):
                seg[j] = w[j] * shifted[j]
            for k in range(1, taps):
                w = weights[k, j0:j1]
                shifted = line[first_col[j0] + k:]
                for j in range(n):
                    seg[j] += w[j] * shifted[j]
        for j in edge_cols:
            s = first_col[j]
            if s < -pad or s >= n_in - taps + 1 + pad:
                o[j] = 0.0
            else:
                o[j] = _clamped_sum(line, s, weights[:, j])


@numba.njit(cache=True, nogil=True)
def _shift_column_runs_kernel(src, first_row, weights, runs, out, r0, r1):
    """out[i, j] = sum_k weights[k, j] src[first_row[j] + i + k, j] for output rows [r0, r1).

    For a gentle shear: ``runs`` (n, 2) are the column ranges [j0, j1) sharing one
    ``first_row``, each read as contiguous pieces of source rows. ``weights`` is (taps, columns).
    """
    n_in = src.shape[0]
    taps = weights.shape[0]
    pad = taps + 2
    for i in range(r0, r1):
        o = out[i]
        for r in range(runs.shape[0]):
            j0, j1 = runs[r, 0], runs[r, 1]
            s = first_row[j0] + i
            if s < -pad or s >= n_in - taps + 1 + pad:
                o[j0:j1] = 0.0
                continue
            n = j1 - j0
            seg = o[j0:j1]
            w = weights[0][j0:j1]
            line = src[min(max(s, 0), n_in - 1)][j0:j1]
            for j in range(n):
                seg[j] = w[j] * line[j]
            for k in range(1, taps):
                w = weights[k][j0:j1]
                line = src[min(max(s + k, 0), n_in - 1)][j0:j1]
                for j in range(n):
                    seg[j] += w[j] * line[j]


@numba.njit(cache=True, nogil=True)
def _shift_columns_kernel(src, first_row, weights, out, c0, c1):
    """out[i, j] = sum_k weights[j, k] src[first_row[j] + i + k, j] for columns [c0, c1).

    For a steep shear: a strip of ``_COLUMN_STRIP`` columns is turned into the rows of a
    buffer, shifted there as :func:`_shift_rows_kernel` shifts rows, and turned back:
    contiguous, vectorised arithmetic whatever the slope of the shear.
    """
    n_in = src.shape[0]
    height = out.shape[0]
    columns = np.empty((_COLUMN_STRIP, n_in), dtype=np.float32)
    shifted = np.empty((_COLUMN_STRIP, height), dtype=np.float32)
    tile = np.empty((16, _COLUMN_STRIP), dtype=np.float32)
    tile_t = np.empty((_COLUMN_STRIP, 16), dtype=np.float32)
    for s0 in range(c0, c1, _COLUMN_STRIP):
        m = min(_COLUMN_STRIP, c1 - s0)
        # 16 source rows at a time into the buffer's columns: whole cache lines both ways.
        for r0 in range(0, n_in, 16):
            nr = min(16, n_in - r0)
            for r in range(nr):
                row = src[r0 + r][s0:s0 + m]
                t = tile[r]
                for j in range(m):
                    t[j] = row[j]
            for j in range(m):
                line = columns[j][r0:r0 + nr]
                for r in range(nr):
                    line[r] = tile[r, j]
        for j in range(m):
            _shift_line(shifted[j], columns[j], first_row[s0 + j], weights[s0 + j])
        for i0 in range(0, height, 16):
            ni = min(16, height - i0)
            for j in range(m):
                line = shifted[j][i0:i0 + ni]
                t = tile_t[j]
                for i in range(ni):
                    t[i] = line[i]
            for i in range(ni):
                row = out[i0 + i][s0:s0 + m]
                for j in range(m):
                    row[j] = tile_t[j, i]


@numba.njit(cache=True, nogil=True)
def _turn_kernel(src, e, out, r0, r1):
    """out[y, x] = src[e[1] . (x, y, 1), e[0] . (x, y, 1)] for output rows [r0, r1).

    ``e`` is an integer quarter-turn/mirror map. An odd number of quarter turns is a
    transpose: it goes through small tiles so that both sides move whole cache lines.
    """
    width = out.shape[1]
    (a, b, c), (d, f, g) = (e[0, 0], e[0, 1], e[0, 2]), (e[1, 0], e[1, 1], e[1, 2])
    if a != 0:
        for y in range(r0, r1):
            line = src[f * y + g]
            o = out[y]
            for x in range(width):
                o[x] = line[a * x + c]
        return
    # 128 output rows are 512 bytes of each source row: reads long enough to be prefetched.
    tile = np.empty((16, 128), dtype=np.float32)
    for y0 in range(r0, r1, 128):
        ny = min(128, r1 - y0)
        # The source columns of these output rows, in increasing order.
        first = min(b * y0 + c, b * (y0 + ny - 1) + c)
        for x0 in range(0, width, 16):
            nx = min(16, width - x0)
            for x in range(nx):
                line = src[d * (x0 + x) + g][first:first + ny]
                t = tile[x]
                if b > 0:
                    for y in range(ny):
                        t[y] = line[y]
                else:
                    for y in range(ny):
                        t[y] = line[ny - 1 - y]
            for y in range(ny):
                o = out[y0 + y][x0:x0 + nx]
                for x in range(nx):
                    o[x] = tile[x, y]


def _as_image(a: np.ndarray) -> np.ndarray:
    """The one layout every kernel is compiled for: C-contiguous float32."""
    return np.ascontiguousarray(a, dtype=np.float32)


def shift_rows(src: np.ndarray, start: np.ndarray, width: int, kernel: str, gain: float = 1.0) -> np.ndarray:
    """Resample each row along x: ``out[i, j] = src(i, start[i] + j)`` (positions in px of ``src``)."""
    src = _as_image(src)
    first_col, weights = _first_taps(start, kernel, gain)
    out = np.empty((src.shape[0], width), dtype=np.float32)
    _in_bands(lambda r0, r1: _shift_rows_kernel(src, first_col, weights, out, r0, r1), src.shape[0])
    return out


def resample_rows(src: np.ndarray, position: np.ndarray, kernel: str, gain: float = 1.0) -> np.ndarray:
    """Resample along y: output row ``i`` is ``src`` at (fractional) row ``position[i]``."""
    src = _as_image(src)
    first_row, weights = _first_taps(position, kernel, gain)
    out = np.empty((len(position), src.shape[1]), dtype=np.float32)
    _in_bands(lambda r0, r1: _resample_rows_kernel(src, first_row, weights, out, r0, r1), len(position))
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
    _in_bands(lambda r0, r1: _resample_columns_kernel(src, first_col, weights_t, runs, edge_cols, out, r0, r1),
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
        _in_bands(lambda r0, r1: _shift_column_runs_kernel(src, first_row, weights_t, runs, out, r0, r1), height)
        return out
    n_strips = -(-src.shape[1] // _COLUMN_STRIP)

    def strips(s0, s1):
        _shift_columns_kernel(src, first_row, weights, out, s0 * _COLUMN_STRIP, min(s1 * _COLUMN_STRIP, src.shape[1]))

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
    _in_bands(lambda r0, r1: _turn_kernel(src, e_int, out, r0, r1), shape[0])
    return out
