"""Star matching between frames of one pointing: small shifts, tiny rotations, same scale.

Frames of a guided sequence differ by a few to a few tens of pixels and a fraction of a
degree, so no triangle invariants are needed: the offset between the two star lists is the
densest cluster of their pairwise differences, and an affine fit on the nearest pairs
refines it. Every result carries its quality and is refused, with the reason, when it
fails a gate (too few pairs, residuals too large, a scale or rotation no guided sequence
produces). General registration with large rotations belongs to pipeline.registration.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from pipeline.errors import PipelineError


class MatchError(PipelineError):
    """Two star lists could not be matched within the gates; the message says which."""


@dataclass(frozen=True)
class MatchGates:
    """Acceptance limits for a match (pixels, fractions, degrees)."""

    min_pairs: int = 8
    max_rms_px: float = 1.0
    max_scale_error: float = 0.01
    max_rotation_deg: float = 3.0
    max_shift_px: float | None = None


@dataclass(frozen=True)
class StarMatch:
    """An affine map from frame pixels to reference pixels, with the pairs that define it.

    ``matrix`` (2x2) and ``offset`` (2,) map a frame position p to ``matrix @ p + offset``
    in the reference frame. Pixel coordinates are 0-based (x, y).
    """

    matrix: np.ndarray
    offset: np.ndarray
    frame_index: np.ndarray
    reference_index: np.ndarray
    rms_px: float

    @property
    def n_pairs(self) -> int:
        return len(self.frame_index)

    @property
    def scale(self) -> float:
        return float(np.sqrt(abs(np.linalg.det(self.matrix))))

    @property
    def rotation_deg(self) -> float:
        return float(np.degrees(np.arctan2(self.matrix[1, 0] - self.matrix[0, 1], self.matrix[0, 0] + self.matrix[1, 1])))

    def apply(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.matrix @ np.vstack([np.asarray(x, float), np.asarray(y, float)]) + self.offset[:, None]
        return p[0], p[1]


def _offset_vote(frame_xy: np.ndarray, ref_xy: np.ndarray, bin_px: float, max_shift: float | None) -> np.ndarray:
    """The most common reference-minus-frame offset among all pairs (a 2-D histogram mode)."""
    diff = (ref_xy[None, :, :] - frame_xy[:, None, :]).reshape(-1, 2)
    if max_shift is not None:
        diff = diff[np.all(np.abs(diff) <= max_shift, axis=1)]
    if len(diff) == 0:
        raise MatchError("no star pairs within the allowed shift")
    keys = np.floor(diff / bin_px).astype(np.int64)
    # Count each bin together with its neighbours so an offset on a bin edge is not split.
    unique, counts = np.unique(keys, axis=0, return_counts=True)
    table = {tuple(k): c for k, c in zip(unique.tolist(), counts.tolist(), strict=True)}
    best, best_votes = None, -1
    for key in unique.tolist():
        votes = sum(table.get((key[0] + i, key[1] + j), 0) for i in (-1, 0, 1) for j in (-1, 0, 1))
        if votes > best_votes:
            best, best_votes = key, votes
    near = np.all(np.abs(keys - np.asarray(best)) <= 1, axis=1)
    return np.median(diff[near], axis=0)


def _fit_affine(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    design = np.column_stack([src, np.ones(len(src))])
    coeffs, *_ = np.linalg.lstsq(design, dst, rcond=None)
    return coeffs[:2].T, coeffs[2]


def match_stars(
    frame_xy: np.ndarray,
    reference_xy: np.ndarray,
    gates: MatchGates = MatchGates(),
    max_stars: int = 150,
    vote_stars: int = 60,
    radius_px: float = 3.0,
) -> StarMatch:
    """Match a frame's stars to a reference's (both (n, 2) arrays, brightest first).

    Raises
    ------
    MatchError
        Too few pairs, residuals too large, or a scale or rotation beyond the gates.
    """
    frame_xy = np.asarray(frame_xy, dtype=float)[:max_stars]
    reference_xy = np.asarray(reference_xy, dtype=float)[:max_stars]
    if len(frame_xy) < gates.min_pairs or len(reference_xy) < gates.min_pairs:
        raise MatchError(f"too few stars to match: {len(frame_xy)} in the frame, {len(reference_xy)} in the "
                         f"reference (at least {gates.min_pairs} needed)")
    shift = _offset_vote(frame_xy[:vote_stars], reference_xy[:vote_stars], 2.0 * radius_px, gates.max_shift_px)
    matrix, offset = np.eye(2), shift
    tree = cKDTree(reference_xy)
    radius = 2.0 * radius_px  # the first pass allows for a small rotation the pure shift ignores
    for _ in range(6):
        moved = frame_xy @ matrix.T + offset
        dist, j = tree.query(moved, distance_upper_bound=radius)
        ok = np.isfinite(dist)
        # One reference star per frame star: keep the closest claim.
        order = np.argsort(dist[ok])
        fi, ri = np.flatnonzero(ok)[order], j[ok][order]
        _, first = np.unique(ri, return_index=True)
        fi, ri = fi[first], ri[first]
        if len(fi) < max(gates.min_pairs, 3):
            raise MatchError(f"only {len(fi)} star pairs found (at least {gates.min_pairs} needed): "
                             f"different fields, or too few stars in common")
        matrix, offset = _fit_affine(frame_xy[fi], reference_xy[ri])
        residual = np.hypot(*(frame_xy[fi] @ matrix.T + offset - reference_xy[ri]).T)
        rms = float(np.sqrt(np.mean(residual**2)))
        radius = max(radius_px, 3.0 * rms)
    result = StarMatch(matrix, offset, fi, ri, rms)
    _check_gates(result, gates)
    return result


def _check_gates(match: StarMatch, gates: MatchGates) -> None:
    if match.n_pairs < gates.min_pairs:
        raise MatchError(f"only {match.n_pairs} star pairs (at least {gates.min_pairs} needed)")
    if match.rms_px > gates.max_rms_px:
        raise MatchError(f"residuals of {match.rms_px:.2f} px rms exceed {gates.max_rms_px} px")
    if abs(match.scale - 1.0) > gates.max_scale_error:
        raise MatchError(f"scale {match.scale:.4f} is not a frame of the same set-up "
                         f"(allowed 1 +- {gates.max_scale_error})")
    if abs(match.rotation_deg) > gates.max_rotation_deg:
        raise MatchError(f"rotation {match.rotation_deg:.2f} deg exceeds {gates.max_rotation_deg} deg")
