"""Synthetic tracking (shift-and-stack) over the SNR maps: a velocity grid for slow movers,
pair-seeded trajectories for fast ones, and the scoring both share.

A trajectory is ``x(t) = x + vx * t``, ``y(t) = y + vy * t`` with ``t`` in frame units from the
reference time ``t_ref`` (mid-sequence). Its score is the sum of the per-frame matched-filter
SNR along it divided by sqrt(frames): for a mover of per-frame SNR s seen in N frames it is
s * sqrt(N), which is how a per-frame SNR of 3 becomes a 15-sigma detection in 24 frames.
Each frame's contribution is clipped so one cosmic ray or glint cannot carry a track, and
the first and second halves of the sequence must each show the mover on their own.

The grid search accumulates integer-shifted, 2x2-binned maps (numpy slice additions, one per
frame bin and velocity); the grid step keeps the trajectory within FWHM/4 of a grid point
at the sequence ends. Velocities too fast for a grid are found from pairs of per-frame
peaks half a sequence apart (seeds), each scored along its whole trajectory.
"""
from __future__ import annotations

import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from datas_pipeline.robust import median_sigma

TRACK_DTYPE = [("x", "f8"), ("y", "f8"), ("vx", "f8"), ("vy", "f8"), ("score", "f8"),
               ("half1", "f8"), ("half2", "f8"), ("n", "i4"), ("median", "f8"), ("source", "U8")]


@dataclass(frozen=True)
class TrackThresholds:
    """Acceptance of a trajectory (SNR units): whole-sequence score and each half's.

    ``clip`` caps one frame's contribution; ``evenness`` is the least ratio of the median
    per-frame value to the mean (a mover shows in most frames, not in a few).
    """

    score: float = 7.5
    half: float = 3.2
    clip: float = 4.0
    evenness: float = 0.4


def sample_maps(cube: np.ndarray, t: np.ndarray, used: np.ndarray, x: np.ndarray, y: np.ndarray,
                vx: np.ndarray, vy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear SNR values along M trajectories in every used frame.

    Returns ``(values, inside)``, both ``(M, n_used)``; outside the frame a value is 0.
    """
    _, ny, nx = cube.shape
    frames = np.flatnonzero(used)
    values = np.zeros((x.size, frames.size), np.float32)
    inside = np.zeros((x.size, frames.size), bool)
    for j, k in enumerate(frames):
        px, py = x + vx * t[k], y + vy * t[k]
        ok = (px >= 0) & (px < nx - 1) & (py >= 0) & (py < ny - 1)
        if not ok.any():
            continue
        ix, iy = np.floor(px[ok]).astype(np.intp), np.floor(py[ok]).astype(np.intp)
        fx, fy = px[ok] - ix, py[ok] - iy
        plane = cube[k]
        v = (plane[iy, ix] * (1 - fx) * (1 - fy) + plane[iy, ix + 1] * fx * (1 - fy)
             + plane[iy + 1, ix] * (1 - fx) * fy + plane[iy + 1, ix + 1] * fx * fy)
        values[ok, j] = v
        inside[ok, j] = True
    return values, inside


def score_values(values: np.ndarray, inside: np.ndarray, clip: float, floor: float = 2.0) -> np.ndarray:
    """Scores of sampled trajectories: structured rows ``(score, half1, half2, n, median)``.

    Each frame's value is clipped at ``max(clip, 2 x the track's median)``, so a bright
    mover keeps its full score while a single-frame outlier adds at most ``clip``; and at
    ``-floor`` below.
    """
    n = inside.sum(axis=1)
    masked = np.where(inside, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # trajectories wholly outside the frame
        med = np.nanmedian(masked, axis=1)
    ceiling = np.maximum(clip, 2.0 * np.nan_to_num(med))[:, None]
    # A floor too: a mover crossing a star's over-subtracted core should not be dragged down.
    clipped = np.where(inside, np.clip(values, -floor, ceiling), 0.0)
    half = values.shape[1] // 2
    n1, n2 = inside[:, :half].sum(axis=1), inside[:, half:].sum(axis=1)
    with np.errstate(all="ignore"):
        score = clipped.sum(axis=1) / np.sqrt(np.maximum(n, 1))
        h1 = clipped[:, :half].sum(axis=1) / np.sqrt(np.maximum(n1, 1))
        h2 = clipped[:, half:].sum(axis=1) / np.sqrt(np.maximum(n2, 1))
    return np.rec.fromarrays([score, h1, h2, n, np.nan_to_num(med)], names="score,half1,half2,n,median")


def _local_grid(step_pos: float, step_vel: float, span: int = 1) -> np.ndarray:
    r = np.arange(-span, span + 1)
    g = np.stack(np.meshgrid(r * step_pos, r * step_pos, r * step_vel, r * step_vel, indexing="ij"), -1)
    return g.reshape(-1, 4)


def refine(cube: np.ndarray, t: np.ndarray, used: np.ndarray, tracks: np.ndarray, dv: float, clip: float,
           rounds: int = 3) -> np.ndarray:
    """Climb each trajectory's score over a shrinking local grid in (x, y, vx, vy)."""
    if tracks.size == 0:
        return tracks
    out = tracks.copy()
    step_pos, step_vel = 0.5, dv / 2.0
    for _ in range(rounds):
        grid = _local_grid(step_pos, step_vel)
        m = len(out)
        x = (out["x"][:, None] + grid[None, :, 0]).ravel()
        y = (out["y"][:, None] + grid[None, :, 1]).ravel()
        vx = (out["vx"][:, None] + grid[None, :, 2]).ravel()
        vy = (out["vy"][:, None] + grid[None, :, 3]).ravel()
        values, inside = sample_maps(cube, t, used, x, y, vx, vy)
        scores = score_values(values, inside, clip)
        best = scores["score"].reshape(m, -1).argmax(axis=1)
        pick = np.arange(m) * grid.shape[0] + best
        out["x"], out["y"], out["vx"], out["vy"] = x[pick], y[pick], vx[pick], vy[pick]
        for name in ("score", "half1", "half2", "n", "median"):
            out[name] = scores[name][pick]
        step_pos, step_vel = step_pos / 2.0, step_vel / 2.0
    return out


def velocity_step(fwhm_px: float, span_frames: float) -> float:
    """Grid step (px/frame) keeping a trajectory within FWHM/4 of a grid point at the ends."""
    return float(fwhm_px / max(span_frames, 1.0))


def _bin2(plane: np.ndarray) -> np.ndarray:
    ny, nx = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = plane[:ny, :nx]
    return 0.25 * (p[0::2, 0::2] + p[1::2, 0::2] + p[0::2, 1::2] + p[1::2, 1::2])


def coarse_stack(cube: np.ndarray, t: np.ndarray, used: np.ndarray, v_max: float) -> tuple[np.ndarray, np.ndarray]:
    """2x2-binned maps summed over consecutive frames while a mover at ``v_max`` moves <= 2 px.

    Returns the ``(n_bins, ny/2, nx/2)`` stack and each bin's mean time (frame units).
    """
    frames = np.flatnonzero(used)
    per_bin = max(1, int(2.0 / max(v_max, 1e-3)))
    groups = [frames[i:i + per_bin] for i in range(0, frames.size, per_bin)]
    ny, nx = cube.shape[1] // 2, cube.shape[2] // 2
    out = np.zeros((len(groups), ny, nx), np.float32)
    times = np.zeros(len(groups))
    for j, group in enumerate(groups):
        for k in group:
            out[j] += _bin2(np.asarray(cube[k]))
        times[j] = t[group].mean()
    return out, times


def _grid_chunk(args) -> tuple[np.ndarray, np.ndarray]:
    coarse, shifts, pad = args
    n_bins, ny, nx = coarse.shape
    best = np.full((ny, nx), -np.inf, np.float32)
    index = np.zeros((ny, nx), np.int32)
    acc = np.empty((ny, nx), np.float32)
    padded = np.zeros((n_bins, ny + 2 * pad, nx + 2 * pad), np.float32)
    padded[:, pad:pad + ny, pad:pad + nx] = coarse
    for iv, (sy, sx) in enumerate(shifts):
        acc[:] = 0
        for j in range(n_bins):
            acc += padded[j, pad + sy[j]:pad + sy[j] + ny, pad + sx[j]:pad + sx[j] + nx]
        better = acc > best
        best[better] = acc[better]
        index[better] = iv
    return best, index


def grid_search(cube: np.ndarray, t: np.ndarray, used: np.ndarray, t_ref: float, fwhm_px: float,
                v_min: float, v_max: float, threshold: float = 5.0, max_candidates: int = 20000,
                workers: int = 1) -> tuple[np.ndarray, dict]:
    """Shift-and-stack over a square velocity grid with ``v_min <= |v| <= v_max`` (px/frame).

    Returns candidate trajectories (``TRACK_DTYPE``, reference time ``t_ref``) whose coarse
    score exceeds ``threshold``, and a summary (grid size, step).
    """
    coarse, bin_t = coarse_stack(cube, t, used, v_max)
    span = float(t[used].max() - t[used].min())
    dv = velocity_step(fwhm_px, span)
    axis = np.arange(-np.ceil(v_max / dv), np.ceil(v_max / dv) + 1) * dv
    vx, vy = (g.ravel() for g in np.meshgrid(axis, axis))
    speed = np.hypot(vx, vy)
    keep = (speed >= v_min) & (speed <= v_max + 1e-9)
    vx, vy = vx[keep], vy[keep]
    if vx.size == 0:
        return np.zeros(0, TRACK_DTYPE), {"velocities": 0, "step_px_per_frame": dv}
    # A coarse pixel is 2 px: the shift of bin j for velocity v is round(v * (t_j - t_ref) / 2).
    rel = bin_t - t_ref
    sx = np.rint(vx[:, None] * rel[None, :] / 2.0).astype(int)
    sy = np.rint(vy[:, None] * rel[None, :] / 2.0).astype(int)
    pad = int(np.abs(np.concatenate([sx.ravel(), sy.ravel()])).max()) + 1
    shifts = list(zip(sy, sx, strict=True))
    chunks = np.array_split(np.arange(len(shifts)), max(1, workers))
    jobs = [(coarse, [shifts[i] for i in c], pad) for c in chunks if c.size]
    if workers > 1 and len(jobs) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_grid_chunk, jobs))
    else:
        parts = [_grid_chunk(job) for job in jobs]
    best, index = parts[0][0], parts[0][1].copy()
    offset = chunks[0].size
    for (b, ix), c in zip(parts[1:], chunks[1:], strict=False):
        better = b > best
        best = np.where(better, b, best)
        index = np.where(better, ix + offset, index)
        offset += c.size
    # Noise of one accumulation: sum of n_bins binned maps; measured, since binning correlates.
    _, spread = median_sigma(_grid_chunk((coarse, [shifts[len(shifts) // 2]], pad))[0][::2, ::2])
    norm = best / np.float32(spread if spread > 0 else 1.0)
    edge = pad
    norm[:edge], norm[-edge:], norm[:, :edge], norm[:, -edge:] = 0, 0, 0, 0
    # Every pixel above threshold, not only local maxima: a neighbour's best velocity may be
    # a noise-lifted wrong one that would hide the right one under non-maximum suppression.
    cy, cx = np.nonzero(norm > threshold)
    order = np.argsort(norm[cy, cx])[::-1][:max_candidates]
    cy, cx = cy[order], cx[order]
    out = np.zeros(cy.size, TRACK_DTYPE)
    iv = index[cy, cx]
    out["vx"], out["vy"] = vx[iv], vy[iv]
    # Bin (cx, cy) covers full-resolution pixels 2c and 2c+1: its centre is 2c + 0.5.
    out["x"], out["y"] = 2.0 * cx + 0.5, 2.0 * cy + 0.5
    out["score"] = norm[cy, cx]
    out["source"] = "grid"
    return out, {"velocities": int(vx.size), "step_px_per_frame": dv, "bins": int(len(bin_t)),
                 "coarse_noise": float(spread)}


def seed_pairs(peaks: list[np.ndarray], cube: np.ndarray, t: np.ndarray, used: np.ndarray, t_ref: float,
               v_min: float, v_max: float, max_pairs: int = 12, checks: int = 4, check_sigma: float = 2.25,
               max_seeds: int = 400000) -> np.ndarray:
    """Trajectories through pairs of per-frame peaks about half a sequence apart.

    For each early frame ``i`` and the frame ``j`` half the used frames later, every peak in
    ``j`` within ``v_max * dt`` (and beyond ``v_min * dt``) of a peak in ``i`` defines a
    trajectory. Noise pairs outnumber movers by far, so each is first checked in ``checks``
    frames between ``i`` and ``j`` (nearest-pixel SNR summed, kept above ``check_sigma`` x
    sqrt(checks)): a mover of per-frame SNR 3 passes nearly always, a noise pair about
    once in a hundred. A dozen pairs seed a per-frame SNR 3 mover nearly always.
    """
    from itertools import chain

    frames = np.flatnonzero(used)
    n = frames.size
    _, ny, nx = cube.shape
    gap = max(1, n // 2)
    starts = frames[: n - gap]
    if starts.size > max_pairs:
        starts = starts[np.linspace(0, starts.size - 1, max_pairs).astype(int)]
    rows = []
    total = 0
    for i in starts:
        pos_i = int(np.searchsorted(frames, i))
        j = frames[pos_i + gap]
        a, b = peaks[i], peaks[j]
        if len(a) == 0 or len(b) == 0:
            continue
        dt = t[j] - t[i]
        tree = cKDTree(b[:, :2])
        hits = tree.query_ball_point(a[:, :2], r=v_max * dt, return_sorted=False)
        counts = np.fromiter((len(h) for h in hits), dtype=np.intp, count=len(hits))
        ia = np.repeat(np.arange(len(a)), counts)
        ib = np.fromiter(chain.from_iterable(hits), dtype=np.intp, count=int(counts.sum()))
        if ia.size == 0:
            continue
        d = b[ib, :2] - a[ia, :2]
        v = d / dt
        keep = np.hypot(v[:, 0], v[:, 1]) >= v_min
        between = frames[pos_i + 1:pos_i + gap]
        if between.size:
            pick = between[np.unique(np.linspace(0, between.size - 1, min(checks, between.size)).astype(int))]
            check = np.zeros(ia.size, np.float32)
            for m in pick:
                px = np.rint(a[ia, 0] + v[:, 0] * (t[m] - t[i])).astype(np.intp)
                py = np.rint(a[ia, 1] + v[:, 1] * (t[m] - t[i])).astype(np.intp)
                ok = (px >= 0) & (px < nx) & (py >= 0) & (py < ny)
                check[ok] += cube[m][py[ok], px[ok]]
            keep &= check >= check_sigma * np.sqrt(pick.size)
        v, start = v[keep], a[ia[keep], :2]
        rows.append(np.column_stack([start + v * (t_ref - t[i]), v]))
        total += len(v)
        if total > max_seeds:
            break
    if not rows:
        return np.zeros(0, TRACK_DTYPE)
    data = np.concatenate(rows)[:max_seeds]
    out = np.zeros(len(data), TRACK_DTYPE)
    out["x"], out["y"], out["vx"], out["vy"] = data.T
    out["source"] = "seed"
    return out


def score_tracks(cube: np.ndarray, t_rel: np.ndarray, used: np.ndarray, tracks: np.ndarray, clip: float,
                 chunk: int = 20000) -> np.ndarray:
    """Fill ``score``, ``half1``, ``half2``, ``n``, ``median`` of ``tracks`` (in chunks to bound memory)."""
    out = tracks.copy()
    for s in range(0, len(out), chunk):
        part = out[s:s + chunk]
        values, inside = sample_maps(cube, t_rel, used, part["x"], part["y"], part["vx"], part["vy"])
        scores = score_values(values, inside, clip)
        for name in ("score", "half1", "half2", "n", "median"):
            out[name][s:s + chunk] = scores[name]
    return out


def merge_duplicates(tracks: np.ndarray, fwhm_px: float, dv: float) -> np.ndarray:
    """Keep the best-scoring of trajectories that are the same mover (position within 2 FWHM
    at the reference time and velocity within 3 grid steps)."""
    if len(tracks) < 2:
        return tracks
    order = np.argsort(tracks["score"])[::-1]
    tracks = tracks[order]
    tree = cKDTree(np.column_stack([tracks["x"], tracks["y"]]))
    taken = np.zeros(len(tracks), bool)
    keep = []
    for i in range(len(tracks)):
        if taken[i]:
            continue
        keep.append(i)
        near = np.asarray(tree.query_ball_point([tracks["x"][i], tracks["y"][i]], r=2.0 * fwhm_px + 1.0))
        same = np.hypot(tracks["vx"][near] - tracks["vx"][i], tracks["vy"][near] - tracks["vy"][i]) <= max(
            3.0 * dv, 0.1 * np.hypot(tracks["vx"][i], tracks["vy"][i]))
        taken[near[same]] = True
    return tracks[keep]
