"""Star-pattern matching with no prior guess: triangle invariants, voting, RANSAC verification.

1. **Asterisms.** Each star and pairs of its nearest neighbours form triangles. A triangle's
   shape, (shortest/longest, middle/longest side), is unchanged by shift, rotation, scale
   and mirroring; its vertices are put in a canonical order by the opposite side's length,
   so a matched shape also names which star is which. Near-isosceles and near-flat
   triangles are dropped because their vertex order or orientation is ambiguous.
2. **Voting.** Every pair of triangles with the same shape (a k-d tree query) proposes a
   similarity transform from its three vertex pairs. True proposals agree with each other;
   chance ones scatter. Each proposal's vote is the number of proposals within one
   rotation/scale/shift bin of it.
3. **RANSAC verification.** The best-voted distinct proposals are tried on every control
   star: map the reference stars into the frame, pair each with the nearest frame star
   within tolerance (one to one), refit on the pairs, repeat. The proposal with the most
   verified pairs wins; ties go to the smaller residual.

The caller (:mod:`datas_pipeline.registration.register`) fits the requested model on the final pairs and
applies the acceptance gates.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
from scipy.spatial import cKDTree

from datas_pipeline.registration.transforms import (
    Transform,
    fit_similarity_batch,
    fit_transform,
    similarity_matrix,
)

INVARIANT_TOLERANCE = 0.012   # side-ratio distance for two triangles to count as the same shape
_MIN_SIDE_GAP = 0.03          # sides closer than this (fraction of the longest) make the order ambiguous
_MIN_FLATNESS = 0.03          # twice the area over longest side squared; below it, orientation is noise


@dataclass(frozen=True)
class Triangles:
    """Triangles over a point list: canonical vertex indices, shape invariants, orientation."""

    vertices: np.ndarray
    invariants: np.ndarray
    counter_clockwise: np.ndarray


@dataclass(frozen=True)
class PatternMatch:
    """The verified correspondence between two star lists."""

    transform: Transform
    ref_index: np.ndarray
    frame_index: np.ndarray
    flip: bool
    triangle_matches: int
    hypotheses_tested: int


def build_triangles(xy: np.ndarray, n_neighbours: int = 5, min_side: float = 6.0) -> Triangles:
    """Triangles of each point with pairs of its ``n_neighbours`` nearest neighbours.

    ``xy`` is (n, 2) in px; triangles whose longest side is under ``min_side`` px are
    dropped (centroid noise dominates their shape).
    """
    n = len(xy)
    empty = Triangles(np.zeros((0, 3), int), np.zeros((0, 2)), np.zeros(0, bool))
    if n < 3:
        return empty
    k = min(n_neighbours, n - 1)
    _, neighbours = cKDTree(xy).query(xy, k + 1)
    pair_index = np.array(list(combinations(range(1, k + 1), 2)))
    tri = np.concatenate(
        [neighbours[:, :1].repeat(len(pair_index), axis=0).reshape(n, -1, 1),
         neighbours[:, pair_index]], axis=2
    ).reshape(-1, 3)
    tri = np.unique(np.sort(tri, axis=1), axis=0)
    p = xy[tri]                                        # (T, 3, 2)
    # Side opposite vertex i joins the other two.
    opposite = np.stack([
        np.hypot(*(p[:, 1] - p[:, 2]).T),
        np.hypot(*(p[:, 0] - p[:, 2]).T),
        np.hypot(*(p[:, 0] - p[:, 1]).T),
    ], axis=1)
    order = np.argsort(opposite, axis=1)
    sides = np.take_along_axis(opposite, order, axis=1)
    tri = np.take_along_axis(tri, order, axis=1)
    longest = sides[:, 2]
    p = xy[tri]
    cross = ((p[:, 1, 0] - p[:, 0, 0]) * (p[:, 2, 1] - p[:, 0, 1])
             - (p[:, 1, 1] - p[:, 0, 1]) * (p[:, 2, 0] - p[:, 0, 0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        gap_low = (sides[:, 1] - sides[:, 0]) / longest
        gap_high = (sides[:, 2] - sides[:, 1]) / longest
        flatness = np.abs(cross) / longest**2
    good = (longest >= min_side) & (gap_low >= _MIN_SIDE_GAP) & (gap_high >= _MIN_SIDE_GAP) & (
        flatness >= _MIN_FLATNESS)
    invariants = np.column_stack([sides[:, 0] / longest, sides[:, 1] / longest])
    return Triangles(tri[good], invariants[good], cross[good] > 0)


def _propose(ref_xy, frame_xy, ref_tri: Triangles, frame_tri: Triangles):
    """All similarity proposals from triangles of matching shape: (flip, a, b)."""
    if len(ref_tri.vertices) == 0 or len(frame_tri.vertices) == 0:
        return np.zeros(0, bool), np.zeros(0, complex), np.zeros(0, complex)
    pairs = cKDTree(ref_tri.invariants).sparse_distance_matrix(
        cKDTree(frame_tri.invariants), INVARIANT_TOLERANCE, output_type="ndarray"
    )
    if len(pairs) == 0:
        return np.zeros(0, bool), np.zeros(0, complex), np.zeros(0, complex)
    i, j = pairs["i"], pairs["j"]
    flip = ref_tri.counter_clockwise[i] != frame_tri.counter_clockwise[j]
    a, b = fit_similarity_batch(ref_xy[ref_tri.vertices[i]], frame_xy[frame_tri.vertices[j]], flip)
    return flip, a, b


def _vote(flip, a, b, center, shift_bin, rotation_bin_deg=1.0, log_scale_bin=0.01):
    """Votes per proposal: proposals within one bin of it in (flip, rotation, scale, shift)."""
    w = complex(center[0], center[1])
    w = np.where(flip, -np.conj(w), w)
    moved = a * w + b - complex(center[0], center[1])
    unit = a / np.where(np.abs(a) > 0, np.abs(a), 1.0)
    rad = np.degrees(1.0) / rotation_bin_deg
    features = np.column_stack([
        flip * 1e6, unit.real * rad, unit.imag * rad, np.log(np.maximum(np.abs(a), 1e-9)) / log_scale_bin,
        moved.real / shift_bin, moved.imag / shift_bin,
    ])
    tree = cKDTree(features)
    return features, tree.query_ball_point(features, 1.0, return_length=True)


def pair_stars(mapped: np.ndarray, frame_tree: cKDTree, tolerance: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one nearest pairs within ``tolerance`` px: (mapped index, frame index, distance)."""
    distance, index = frame_tree.query(mapped, k=1, distance_upper_bound=tolerance)
    found = np.isfinite(distance)
    ref_index = np.flatnonzero(found)
    frame_index, distance = index[found], distance[found]
    # Where two reference stars claim one frame star, the closer keeps it.
    order = np.argsort(distance, kind="stable")
    _, first = np.unique(frame_index[order], return_index=True)
    keep = np.sort(order[first])
    return ref_index[keep], frame_index[keep], distance[keep]


def _refine(ref_xy, frame_xy, frame_tree, transform, flip, tolerances):
    """Alternate pairing and similarity refits, tightening the tolerance; return pairs and model."""
    ri = fi = np.zeros(0, int)
    for tol in tolerances:
        mapped = np.column_stack(transform.apply(ref_xy[:, 0], ref_xy[:, 1]))
        ri, fi, _ = pair_stars(mapped, frame_tree, tol)
        if len(ri) < 3:
            return ri, fi, transform
        transform = fit_transform("similarity", ref_xy[ri], frame_xy[fi], flip=flip)
    mapped = np.column_stack(transform.apply(ref_xy[:, 0], ref_xy[:, 1]))
    ri, fi, _ = pair_stars(mapped, frame_tree, tolerances[-1])
    return ri, fi, transform


def match_patterns(
    ref_xy: np.ndarray,
    frame_xy: np.ndarray,
    tolerance: float,
    center: tuple[float, float],
    size: float,
    n_pattern_stars: int = 40,
    max_hypotheses: int = 12,
    scale_range: tuple[float, float] | None = None,
) -> PatternMatch | None:
    """Find the similarity that pairs the most stars of two lists, with no prior guess.

    Parameters
    ----------
    ref_xy, frame_xy : (n, 2) arrays
        Star positions (px), brightest first.
    tolerance : float
        Final pairing radius (px).
    center : (x, y)
        Reference point whose displacement is voted on (the reference frame's centre, px).
    size : float
        The frame's diagonal (px); it sets how far apart two proposals' shifts may be and
        still count as the same.
    n_pattern_stars : int
        How many of the brightest stars of each list form triangles.
    max_hypotheses : int
        How many best-voted distinct proposals are verified on all stars.
    scale_range : (low, high), optional
        Frame px per reference px allowed for a proposal (a known plate scale); any when None.

    Returns
    -------
    PatternMatch with a similarity transform, or None when no proposal pairs 3 stars.
    """
    ref_tri = build_triangles(ref_xy[:n_pattern_stars])
    frame_tri = build_triangles(frame_xy[:n_pattern_stars])
    flip, a, b = _propose(ref_xy, frame_xy, ref_tri, frame_tri)
    if scale_range is not None:
        plausible = (np.abs(a) >= scale_range[0]) & (np.abs(a) <= scale_range[1])
        flip, a, b = flip[plausible], a[plausible], b[plausible]
    if len(a) == 0:
        return None
    shift_bin = max(4.0, 0.003 * size)
    features, votes = _vote(flip, a, b, center, shift_bin)
    frame_tree = cKDTree(frame_xy)
    # A triangle's proposal is good to a few px at the far corners; pair loosely, then tighten.
    loose = max(3.0 * tolerance, 0.002 * size)
    tolerances = (loose, max(tolerance, loose / 2), tolerance, tolerance)
    best = None
    chosen: list[np.ndarray] = []
    tested = 0
    for h in np.argsort(-votes, kind="stable"):
        if tested >= max_hypotheses:
            break
        if any(np.all(np.abs(features[h] - c) <= 1.0) for c in chosen):
            continue
        chosen.append(features[h])
        tested += 1
        start = Transform("similarity", similarity_matrix(complex(a[h]), complex(b[h]), bool(flip[h])))
        ri, fi, model = _refine(ref_xy, frame_xy, frame_tree, start, bool(flip[h]), tolerances)
        if len(ri) < 3:
            continue
        mapped = np.column_stack(model.apply(ref_xy[ri, 0], ref_xy[ri, 1]))
        rms = float(np.sqrt(np.mean(np.sum((mapped - frame_xy[fi]) ** 2, axis=1))))
        key = (len(ri), -rms)
        if best is None or key > best[0]:
            best = (key, model, ri, fi, bool(flip[h]))
    if best is None:
        return None
    _, model, ri, fi, flipped = best
    return PatternMatch(model, ri, fi, flipped, len(a), tested)
