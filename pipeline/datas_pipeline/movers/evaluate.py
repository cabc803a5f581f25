"""Score a search against known truth: which movers were found, which tracks are false, how
precise the positions are. Shared by the tests, ``bench/movers.py`` and the auto-tune.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Match:
    """Truth-to-track matching: ``found[i]`` is the track index of mover i (-1 if missed)."""

    found: np.ndarray
    false_tracks: int
    position_errors: np.ndarray

    @property
    def recall(self) -> float:
        return float(np.mean(self.found >= 0)) if self.found.size else float("nan")


def match_tracks(tracks, movers: np.ndarray, t_ref: float, span: float, tolerance_px: float = 2.5) -> Match:
    """Match tracks (objects with ``x, y, vx, vy`` at ``t_ref``) to true movers.

    ``movers`` holds positions at frame 0 and rates (px/frame); a track matches when its
    position is within ``tolerance_px`` of the truth at ``t_ref`` and at both ends of the
    ``span`` (frame units). Streaks are not tracks here. ``position_errors`` (px) are the
    per-frame errors of matched tracks' reported positions, pooled.
    """
    rows = [(tr.x, tr.y, tr.vx, tr.vy) for tr in tracks]
    found = np.full(len(movers), -1)
    taken = set()
    errors = []
    for i, m in enumerate(movers):
        tx, ty = m["x"] + m["vx"] * t_ref, m["y"] + m["vy"] * t_ref
        best, best_d = -1, np.inf
        for j, (x, y, vx, vy) in enumerate(rows):
            if j in taken:
                continue
            d0 = np.hypot(x - tx, y - ty)
            d_end = np.hypot(vx - m["vx"], vy - m["vy"]) * span / 2.0
            if d0 <= tolerance_px and d_end <= tolerance_px and d0 < best_d:
                best, best_d = j, d0
        if best >= 0:
            found[i] = best
            taken.add(best)
            for p in tracks[best].positions:
                f = p["frame"]
                errors.append(np.hypot(p["x"] - (m["x"] + m["vx"] * f), p["y"] - (m["y"] + m["vy"] * f)))
    return Match(found, len(rows) - len(taken), np.asarray(errors))
