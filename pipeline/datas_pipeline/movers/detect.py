"""Per-frame detection on the SNR maps: peaks, footprint shapes, and streaks.

A streak is a single-frame trail (satellite, meteor, aircraft): an elongated footprint
whose length is several PSF widths. Footprint shape also tells a compact slow mover (one
lobe, mildly elongated) from a close double star that merely looks elongated (two lobes
joined by a waist), the impostor JTransient guards against.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

STREAK_ELONGATION = 6.0


@dataclass(frozen=True)
class Shape:
    """Second-moment shape of a footprint.

    ``elongation`` = sqrt(major / minor eigenvalue); ``angle_deg`` of the major axis from +x
    towards +y, in [0, 180); ``length_px`` the extent along it; ``x``, ``y`` the (weighted)
    centre, 0-based px.
    """

    npix: int
    x: float
    y: float
    elongation: float
    angle_deg: float
    length_px: float
    width_px: float


@dataclass(frozen=True)
class Streak:
    """A trail within one frame: centre, ends and angle (0-based px, degrees from +x towards +y)."""

    frame: int
    x: float
    y: float
    x0: float
    y0: float
    x1: float
    y1: float
    angle_deg: float
    length_px: float
    snr: float


def footprint_shape(ys: np.ndarray, xs: np.ndarray, weights: np.ndarray | None = None) -> Shape:
    """Moments of the pixels ``(ys, xs)`` (optionally weighted, weights >= 0)."""
    ys, xs = np.asarray(ys, float), np.asarray(xs, float)
    w = np.ones_like(xs) if weights is None else np.clip(np.asarray(weights, float), 0, None) + 1e-12
    total = w.sum()
    cx, cy = (w * xs).sum() / total, (w * ys).sum() / total
    dx, dy = xs - cx, ys - cy
    # +1/12 px^2: the moments of a pixel's own area, so one pixel is round, not a point.
    cov = np.array([[(w * dx * dx).sum(), (w * dx * dy).sum()], [(w * dx * dy).sum(), (w * dy * dy).sum()]])
    cov = cov / total + np.eye(2) / 12.0
    values, vectors = np.linalg.eigh(cov)
    minor, major = max(values[0], 1e-12), values[1]
    vx, vy = vectors[:, 1]
    angle = float(np.degrees(np.arctan2(vy, vx)) % 180.0)
    along = dx * vx + dy * vy
    across = -dx * vy + dy * vx
    return Shape(int(xs.size), float(cx), float(cy), float(np.sqrt(major / minor)), angle,
                 float(along.max() - along.min() + 1.0), float(across.max() - across.min() + 1.0))


def lobes(mask: np.ndarray, min_pixels: int = 3) -> int:
    """Number of lobes of a footprint: components left after one erosion, of ``min_pixels`` or more.

    A close double star seen as one blob has a waist that one erosion cuts; a slow mover's
    footprint stays one piece (or vanishes, when it is only ~3 px wide: then it is one lobe).
    """
    mask = np.asarray(mask, bool)
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, 3), bool))
    labels, n = ndimage.label(eroded)
    if n == 0:
        return 1 if mask.any() else 0
    sizes = np.bincount(labels.ravel())[1:]
    return max(1, int((sizes >= min_pixels).sum()))


def classify_footprint(mask: np.ndarray, fwhm_px: float = 3.0) -> str:
    """``"streak"``, ``"double"`` (two merged stars), ``"elongated"`` or ``"point"`` for a footprint mask."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        raise ValueError("empty footprint")
    shape = footprint_shape(ys, xs)
    if lobes(mask) >= 2:
        return "double"
    if shape.elongation > STREAK_ELONGATION and shape.npix >= 25 and shape.length_px >= 5 * fwhm_px:
        return "streak"
    return "elongated" if shape.elongation > 1.5 else "point"


def local_peaks(snr: np.ndarray, threshold: float, size: int = 5, max_peaks: int = 20000) -> np.ndarray:
    """Local maxima of an SNR map above ``threshold``: rows of ``(x, y, snr)``, brightest first."""
    ys, xs = np.nonzero(snr > threshold)
    if ys.size == 0:
        return np.zeros((0, 3))
    # Compare the pixels above threshold with their neighbours only (a full maximum filter
    # costs more than everything else here).
    ny, nx = snr.shape
    r = size // 2
    values = snr[ys, xs]
    peak = np.ones(ys.size, bool)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy == 0 and dx == 0:
                continue
            yy, xx = ys + dy, xs + dx
            ok = (yy >= 0) & (yy < ny) & (xx >= 0) & (xx < nx)
            other = np.full(ys.size, -np.inf, snr.dtype)
            other[ok] = snr[yy[ok], xx[ok]]
            # Ties (flat tops) go to the first pixel in raster order.
            peak &= (other < values) | ((other == values) & ((dy > 0) | ((dy == 0) & (dx > 0))))
    ys, xs, values = ys[peak], xs[peak], values[peak]
    order = np.argsort(values)[::-1][:max_peaks]
    ys, xs, values = ys[order], xs[order], values[order]
    # Sub-pixel position: the vertex of a parabola through the peak and its two neighbours.
    ny, nx = snr.shape
    fx, fy = np.zeros(xs.size), np.zeros(ys.size)
    inner = (xs > 0) & (xs < nx - 1) & (ys > 0) & (ys < ny - 1)
    x, y = xs[inner], ys[inner]
    for axis_off, out in (((0, 1), fx), ((1, 0), fy)):
        lo = snr[y - axis_off[0], x - axis_off[1]]
        hi = snr[y + axis_off[0], x + axis_off[1]]
        mid = snr[y, x]
        curve = lo - 2 * mid + hi
        with np.errstate(all="ignore"):
            out[inner] = np.clip(np.where(curve < 0, 0.5 * (lo - hi) / curve, 0.0), -0.5, 0.5)
    return np.column_stack([xs + fx, ys + fy, values]).astype(float)


def find_streaks(snr: np.ndarray, frame: int, fwhm_px: float, threshold: float = 3.0,
                 min_elongation: float = STREAK_ELONGATION) -> tuple[list[Streak], np.ndarray]:
    """Trails in one SNR map and the mask of their pixels (grown by one FWHM).

    A footprint above ``threshold`` counts as a streak when it has 25 px or more, an
    elongation above ``min_elongation`` and a length of at least 5 FWHM.
    """
    above = snr > threshold
    labels, n = ndimage.label(above, structure=np.ones((3, 3), bool))
    mask = np.zeros(snr.shape, bool)
    if n == 0:
        return [], mask
    sizes = np.bincount(labels.ravel())
    min_len = 5.0 * fwhm_px
    streaks = []
    slices = ndimage.find_objects(labels)
    for index in np.flatnonzero(sizes >= max(25, int(min_len))):
        if index == 0:
            continue
        sl = slices[index - 1]
        ys, xs = np.nonzero(labels[sl] == index)
        ys, xs = ys + sl[0].start, xs + sl[1].start
        shape = footprint_shape(ys, xs, snr[ys, xs])
        if shape.elongation < min_elongation or shape.length_px < min_len:
            continue
        theta = np.radians(shape.angle_deg)
        along = (xs - shape.x) * np.cos(theta) + (ys - shape.y) * np.sin(theta)
        a0, a1 = float(along.min()), float(along.max())
        streaks.append(Streak(frame, shape.x, shape.y,
                              shape.x + a0 * np.cos(theta), shape.y + a0 * np.sin(theta),
                              shape.x + a1 * np.cos(theta), shape.y + a1 * np.sin(theta),
                              shape.angle_deg, shape.length_px, float(snr[ys, xs].sum() / np.sqrt(ys.size))))
        mask[ys, xs] = True
    if mask.any():
        mask = ndimage.binary_dilation(mask, iterations=int(np.ceil(fwhm_px)))
    return merge_collinear(streaks, fwhm_px), mask


def merge_collinear(streaks: list[Streak], fwhm_px: float, max_angle_deg: float = 3.0) -> list[Streak]:
    """Join pieces of one trail (a star or a gap in the threshold splits it) in the same frame."""
    merged: list[Streak] = []
    for s in sorted(streaks, key=lambda s: -s.length_px):
        for i, m in enumerate(merged):
            turn = abs((s.angle_deg - m.angle_deg + 90.0) % 180.0 - 90.0)
            theta = np.radians(m.angle_deg)
            offset = abs(-(s.x - m.x) * np.sin(theta) + (s.y - m.y) * np.cos(theta))
            if s.frame == m.frame and turn <= max_angle_deg and offset <= 2.0 * fwhm_px:
                ends = np.array([[m.x0, m.y0], [m.x1, m.y1], [s.x0, s.y0], [s.x1, s.y1]])
                along = (ends[:, 0] - m.x) * np.cos(theta) + (ends[:, 1] - m.y) * np.sin(theta)
                a, b = ends[along.argmin()], ends[along.argmax()]
                merged[i] = Streak(m.frame, float((a[0] + b[0]) / 2), float((a[1] + b[1]) / 2), float(a[0]),
                                   float(a[1]), float(b[0]), float(b[1]), m.angle_deg,
                                   float(np.hypot(*(b - a)) + 1.0), float(np.hypot(m.snr, s.snr)))
                break
        else:
            merged.append(s)
    return merged
