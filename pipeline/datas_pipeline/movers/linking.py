"""Frame-to-frame linking of single-frame detections into straight, constant-rate tracks.

This is SpacePixels/JTransient's approach (its time-based point linker, simplified): find
each mover in single frames at a high threshold, pair detections in consecutive frames
whose step exceeds the registration jitter, predict the next positions and collect the
detections that fall within a tolerance, accepting tracks with enough points. It is fast
and finds bright fast movers at any rate, but its floor is the single-frame threshold and
the jitter: it is the baseline ``bench/movers.py`` compares synthetic tracking with, and the
mover search uses it for rates beyond the synthetic tracker's range.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from datas_pipeline.movers.tracking import TRACK_DTYPE


def link_detections(peaks: list[np.ndarray], t: np.ndarray, used: np.ndarray, t_ref: float,
                    min_step_px: float = 1.5, max_rate: float = 60.0, tolerance_px: float = 3.0,
                    min_snr: float = 5.0, min_points: int | None = None) -> np.ndarray:
    """Link per-frame peaks (rows ``x, y, snr``) into constant-rate tracks.

    Parameters
    ----------
    peaks : list of numpy.ndarray
        Per frame, detections as rows ``(x, y, snr)`` (0-based px, matched-filter SNR).
    t : numpy.ndarray
        Frame times (frame units); ``used`` marks frames to link.
    min_step_px : float
        Steps at or below this (the registration jitter) cannot seed a track, so a
        track cannot stall on a star.
    max_rate : float
        Fastest rate linked (px/frame).
    tolerance_px : float
        Largest distance of a detection from the predicted position (px).
    min_snr : float
        Single-frame threshold for a detection to be linked.
    min_points : int, optional
        Points needed (default ``max(3, min(5, ceil(frames / 3)))`` as JTransient).

    Returns
    -------
    numpy.ndarray
        ``TRACK_DTYPE`` rows, position at ``t_ref``; ``score`` is the mean point SNR times
        sqrt(points) and ``n`` the number of points.
    """
    frames = np.flatnonzero(used)
    if min_points is None:
        min_points = max(3, min(5, int(np.ceil(frames.size / 3))))
    det = [p[p[:, 2] >= min_snr] if len(p) else np.zeros((0, 3)) for p in peaks]
    trees = {k: cKDTree(det[k][:, :2]) for k in frames if len(det[k])}
    claimed = {k: np.zeros(len(det[k]), bool) for k in frames}
    found = []
    for a_pos, k in enumerate(frames[:-1]):
        for gap in (1, 2):
            if a_pos + gap >= frames.size:
                continue
            m = frames[a_pos + gap]
            if k not in trees or m not in trees:
                continue
            dt = t[m] - t[k]
            pairs = trees[k].query_ball_tree(trees[m], r=max_rate * dt)
            for i, hits in enumerate(pairs):
                if claimed[k][i]:
                    continue
                for j in hits:
                    if claimed[m][j]:
                        continue
                    step = det[m][j, :2] - det[k][i, :2]
                    if np.hypot(*step) <= min_step_px * max(1.0, dt):
                        continue
                    track = _grow(det, trees, claimed, frames, t, k, i, step / dt, tolerance_px)
                    if len(track) >= min_points:
                        found.append(_fit(track, det, t, t_ref))
                        for f, d in track:
                            claimed[f][d] = True
                        break
    out = np.zeros(len(found), TRACK_DTYPE)
    for row, (x, y, vx, vy, score, n) in enumerate(found):
        out[row] = (x, y, vx, vy, score, np.nan, np.nan, n, np.nan, "link")
    return out


def _grow(det, trees, claimed, frames, t, k, i, velocity, tolerance):
    """Detections along the line from detection ``i`` of frame ``k`` with ``velocity`` (px/frame)."""
    start = det[k][i, :2]
    track = [(k, i)]
    origin_t = t[k]
    v = velocity.copy()
    for m in sorted(frames, key=lambda f: abs(t[f] - t[k])):  # nearest first: extrapolate little
        if m == k or m not in trees:
            continue
        predicted = start + v * (t[m] - origin_t)
        dist, j = trees[m].query(predicted, distance_upper_bound=tolerance)
        if np.isfinite(dist) and not claimed[m][j]:
            track.append((m, int(j)))
            if len(track) >= 3:  # refit so the prediction follows the track
                pts = np.array([det[f][d, :2] for f, d in track])
                tt = np.array([t[f] for f, _ in track]) - origin_t
                v = np.array([np.polyfit(tt, pts[:, c], 1)[0] for c in range(2)])
                start = np.array([np.polyfit(tt, pts[:, c], 1)[1] for c in range(2)])
    return sorted(track)


def _fit(track, det, t, t_ref):
    pts = np.array([det[f][d] for f, d in track])
    tt = np.array([t[f] for f, _ in track]) - t_ref
    (vx, x), (vy, y) = (np.polyfit(tt, pts[:, c], 1) for c in range(2))
    return x, y, vx, vy, float(pts[:, 2].mean() * np.sqrt(len(track))), len(track)
