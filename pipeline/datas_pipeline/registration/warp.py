"""Resample a frame onto the reference grid, conserving flux, with a coverage mask.

For every output (reference) pixel ``p`` the frame is read at ``transform.apply(p)``
(:mod:`datas_pipeline.registration.transforms`). Kernels: ``lanczos3`` (6 taps, the default: sharp,
small ringing) and ``bicubic`` (Keys, a = -0.5, 4 taps); weights are normalised to sum to
one so a flat sky stays flat, and the result is multiplied by the Jacobian of the mapping
so a star keeps its total flux whatever the scale.

Linear transforms are done as 1-D passes, each a pure shear or a pure scale, after an
exact quarter-turn or mirror brings the residual rotation within +-45 degrees. Rotations
beyond ~2.5 degrees go through Paeth's three shears, which move flux along rows without
stretching it, then the true x and y scales: ``M = Sx . Sy . Sx . diag(sx, sy)``. Nearly
unit scales take four passes (Catmull and Smith's separable idea): ``M = X(a) . Sy(c) .
Sx(b / det) . Y(det / a)``. The passes are compiled kernels run on two threads
(:mod:`datas_pipeline.registration.resample`).
Polynomial transforms fall back to a direct 2-D gather (slower; wide-field distortion only).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import binary_dilation

from datas_pipeline.errors import PipelineError
from datas_pipeline.registration import _resample
from datas_pipeline.registration.resample import (  # noqa: F401 (KERNELS is public here)
    KERNELS,
    _taps,
    kernel_weights,
    resample_columns,
    resample_rows,
    shift_columns,
    shift_rows,
    turned_copy,
)
from datas_pipeline.registration.transforms import Transform

_FOUR_PASS_SCALE = 1.0 / 512   # x and y scales this close to one take the four-pass route


@dataclass(frozen=True)
class Warped:
    """A frame on the reference grid: ``data`` (float32, ``fill`` where uncovered) and ``coverage``."""

    data: np.ndarray
    coverage: np.ndarray


def _exact_turn(shape: tuple[int, int], k: int, flip: bool) -> np.ndarray:
    """3x3 integer map E with ``view(p) = image(E p)`` for ``view = rot90(fliplr?(image), k)``."""
    ny, nx = shape
    e = np.eye(3)
    if flip:
        e = e @ np.array([[-1, 0, nx - 1], [0, 1, 0], [0, 0, 1]], float)
    for _ in range(k):
        # rot90 once: view[y', x'] = image[x', nx - 1 - y'], and the shape turns.
        e = e @ np.array([[0, -1, nx - 1], [1, 0, 0], [0, 0, 1]], float)
        ny, nx = nx, ny
    return e


def _best_turn(image: np.ndarray, matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` quarter-turned/mirrored to leave the least rotation (float32, contiguous), and the new matrix."""
    best = None
    for flip in (False, True):
        for k in range(4):
            e = _exact_turn(image.shape, k, flip)
            m = np.linalg.inv(e) @ matrix
            lin = m[:2, :2]
            if np.linalg.det(lin) <= 0:
                continue
            score = lin[0, 0] + lin[1, 1]
            if best is None or score > best[0]:
                best = (score, k, flip, e, m)
    _, k, flip, e, m = best
    if k == 0 and not flip:
        return np.ascontiguousarray(image, dtype=np.float32), m
    return turned_copy(image, e), m


def _covered_columns(matrix: np.ndarray, in_shape, out_shape) -> tuple[np.ndarray, np.ndarray]:
    """Per output row, the first and last column whose source lies on the frame (inclusive).

    The frame's footprint (pixel edges, so within half a pixel of the outer centres) is
    convex, so each row covers one interval; empty rows have ``last < first``.
    """
    ny, nx = out_shape
    y = np.arange(ny, dtype=np.float64)
    lo = np.full(ny, 0.0)
    hi = np.full(ny, nx - 1.0)
    for row, limit in ((matrix[0], in_shape[1]), (matrix[1], in_shape[0])):
        a, b = row[0], row[1] * y + row[2]
        if abs(a) < 1e-12:
            outside = (b < -0.5) | (b > limit - 0.5)
            hi = np.where(outside, -1.0, hi)
            continue
        e0, e1 = (-0.5 - b) / a, (limit - 0.5 - b) / a
        lo = np.maximum(lo, np.minimum(e0, e1))
        hi = np.minimum(hi, np.maximum(e0, e1))
    return np.ceil(lo - 1e-9).astype(np.int64), np.floor(hi + 1e-9).astype(np.int64)


def _span(values: np.ndarray, reach: int) -> tuple[int, int]:
    """Integer grid (origin, length) covering ``values`` with ``reach`` px to spare each side."""
    lo = int(np.floor(np.min(values))) - reach
    return lo, int(np.ceil(np.max(values))) + reach - lo + 1


def _warp_linear(image, matrix, out_shape, kernel, conserve_flux) -> np.ndarray:
    """Four or five 1-D passes, each a pure shear or a pure scale (module docstring)."""
    src, m = _best_turn(image, matrix)
    (a, b, tx), (c, d, ty) = m[0], m[1]
    det = a * d - b * c
    reach = 5
    ny_o, nx_o = out_shape
    x_out = np.arange(nx_o, dtype=np.float64)
    y_out = np.arange(ny_o, dtype=np.float64)
    if abs(a - 1.0) <= _FOUR_PASS_SCALE and abs(det / a - 1.0) <= _FOUR_PASS_SCALE:
        # Nearly unit scales: M = X(a) . Sy(c) . Sx(b/det) . Y(det/a), four passes.
        alpha, h2, h3, beta = a, c, b / det, det / a
        y3_0, y3_n = _span(beta * y_out, reach)
        y3 = y3_0 + np.arange(y3_n, dtype=np.float64)
        x2_0, x2_n = _span(np.concatenate([h3 * y3[[0, -1]], nx_o - 1 + h3 * y3[[0, -1]]]), reach)
        x2 = x2_0 + np.arange(x2_n, dtype=np.float64)
        tmp = resample_columns(src, alpha * x2 + tx, kernel, abs(alpha) if conserve_flux else 1.0)
        tmp = shift_columns(tmp, y3_0 + h2 * x2 + ty, y3_n, kernel)
        tmp = shift_rows(tmp, h3 * y3 - x2_0, nx_o, kernel)
        return resample_rows(tmp, beta * y_out - y3_0, kernel, abs(beta) if conserve_flux else 1.0)
    # Rotation by three shears (Paeth), which move flux without stretching it, then the true
    # scales: M = Sx(p) . Sy(q) . Sx(r) . diag(sx, sy), with the first column of M / sx a unit vector.
    sx = float(np.hypot(a, c))
    sy = det / sx
    m11, m21, m12 = a / sx, c / sx, b / sy
    p = -m21 / (1.0 + m11)
    q = m21
    r = m21 / ((1.0 + m11) * m11) + m12 / m11 if abs(m11) > 1e-9 else p
    c1, c2 = tx - p * ty, ty
    y4_0, y4_n = _span(sy * y_out, reach)
    y4 = y4_0 + np.arange(y4_n, dtype=np.float64)
    x3_0, x3_n = _span(sx * x_out, reach)
    x2_0, x2_n = _span(np.concatenate([x3_0 + r * y4[[0, -1]], x3_0 + x3_n - 1 + r * y4[[0, -1]]]), reach)
    x2 = x2_0 + np.arange(x2_n, dtype=np.float64)
    y_in = np.arange(src.shape[0], dtype=np.float64)
    tmp = shift_rows(src, x2_0 + p * y_in + c1, x2_n, kernel)
    tmp = shift_columns(tmp, y4_0 + q * x2 + c2, y4_n, kernel)
    tmp = shift_rows(tmp, x3_0 + r * y4 - x2_0, x3_n, kernel)
    tmp = resample_columns(tmp, sx * x_out - x3_0, kernel, abs(sx) if conserve_flux else 1.0)
    return resample_rows(tmp, sy * y_out - y4_0, kernel, abs(sy) if conserve_flux else 1.0)


def _warp_general(image, transform: Transform, out_shape, kernel, conserve_flux) -> np.ndarray:
    """Direct 2-D interpolation at every output pixel (polynomial transforms)."""
    taps, first = _taps(kernel)
    pad = taps + 2
    src = np.pad(np.asarray(image, dtype=np.float32), pad, mode="edge")
    ny_o, nx_o = out_shape
    out = np.zeros(out_shape, dtype=np.float32)
    rows = max(1, (1 << 18) // nx_o)     # a few MB of taps per chunk
    x = np.arange(nx_o, dtype=np.float64)
    for r0 in range(0, ny_o, rows):
        gy, gx = np.meshgrid(np.arange(r0, min(r0 + rows, ny_o), dtype=np.float64), x, indexing="ij")
        u, v = transform.apply(gx.ravel(), gy.ravel())
        bu, bv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        wu, wv = kernel_weights(kernel, u - bu), kernel_weights(kernel, v - bv)
        cu = np.clip(bu + first + pad, 0, src.shape[1] - taps)
        cv = np.clip(bv + first + pad, 0, src.shape[0] - taps)
        acc = np.zeros(u.shape, dtype=np.float32)
        for i in range(taps):
            line = np.zeros(u.shape, dtype=np.float32)
            for j in range(taps):
                line += wu[:, j] * src[cv + i, cu + j]
            acc += wv[:, i] * line
        if conserve_flux:
            h = 0.5
            ux, vx = transform.apply(gx.ravel() + h, gy.ravel())
            uy, vy = transform.apply(gx.ravel(), gy.ravel() + h)
            acc *= np.abs((ux - u) * (vy - v) - (uy - u) * (vx - v)).astype(np.float32) / (h * h)
        out[r0:r0 + gy.shape[0]] = acc.reshape(gy.shape)
    return out


def warp_image(
    image: np.ndarray,
    transform: Transform,
    output_shape: tuple[int, int] | None = None,
    kernel: str = "lanczos3",
    conserve_flux: bool = True,
    fill: float = np.nan,
) -> Warped:
    """Resample ``image`` (a frame) onto the reference grid described by ``transform``.

    Parameters
    ----------
    image : 2-D array
        The frame, any linear unit.
    transform : Transform
        Reference-to-frame mapping, e.g. ``registration.transform``.
    output_shape : (ny, nx), optional
        The reference frame's shape; the frame's own shape when omitted.
    kernel : {'lanczos3', 'bicubic'}
        Interpolation kernel.
    conserve_flux : bool
        Multiply by the mapping's Jacobian so each star keeps its total flux (surface
        brightness is what is conserved when False).
    fill : float
        Value of output pixels the frame does not cover.

    Returns
    -------
    Warped with float32 ``data`` and boolean ``coverage``.
    """
    data = np.asarray(image)
    if data.ndim != 2:
        raise PipelineError(f"can only warp a 2-D image, got shape {data.shape}")
    _taps(kernel)
    out_shape = tuple(int(v) for v in (output_shape or data.shape))
    blank = None
    if not np.isfinite(np.add.reduce(data, axis=None, dtype=np.float64)):
        # Blank pixels would smear over every pass's kernel; fill them for the arithmetic and
        # blank again only the output pixels that land on them (or next to them).
        blank = ~np.isfinite(data)
        data = np.where(blank, np.float32(np.nanmedian(data)) if not blank.all() else 0.0, data)
    if transform.is_linear:
        out = _warp_linear(data, transform.matrix, out_shape, kernel, conserve_flux)
        first, last = _covered_columns(transform.matrix, data.shape, out_shape)
        coverage = np.empty(out_shape, dtype=bool)
        _resample.mark_coverage(out, coverage.view(np.uint8), first, last, float(fill))
    else:
        out = _warp_general(data, transform, out_shape, kernel, conserve_flux)
        gy, gx = np.mgrid[0:out_shape[0], 0:out_shape[1]]
        u, v = transform.apply(gx, gy)
        coverage = (u >= -0.5) & (u <= data.shape[1] - 0.5) & (v >= -0.5) & (v <= data.shape[0] - 0.5)
        np.putmask(out, ~coverage, np.float32(fill))
    if blank is not None:
        near = binary_dilation(blank, np.ones((3, 3), bool))
        gy, gx = np.mgrid[0:out_shape[0], 0:out_shape[1]]
        u, v = transform.apply(gx, gy)
        iu = np.clip(np.rint(u), 0, data.shape[1] - 1).astype(np.int64)
        iv = np.clip(np.rint(v), 0, data.shape[0] - 1).astype(np.int64)
        holes = coverage & near[iv, iu]
        coverage &= ~holes
        out[holes] = fill
    return Warped(out, coverage)
