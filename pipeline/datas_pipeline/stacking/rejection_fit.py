"""Siril's linear-fit and generalized-ESD (GESD) rejection, on the sorted window of
:mod:`datas_pipeline.stacking.rejection`.

Both work on each pixel's values sorted along the frame axis, where an outlier can only be at
either end of the current window, so the survivors stay a contiguous window ``[lo, hi)``
and the combination that follows is the one the other methods use.

- **GESD** (Rosner 1983; Siril's ``g``): up to ``max_fraction`` x N values are tested. At
  step i the value farthest from the window's mean gives ``R_i = |x - mean| / sd`` and is
  set aside; the critical value ``lambda_i`` comes from Student's t at significance
  ``alpha``. The number of outliers is the largest i with ``R_i > lambda_i``, and exactly
  those values are rejected (the most extreme first).
- **Linear fit** (Siril's ``l``): a straight line is fitted to the sorted window against its
  rank; sigma is the mean absolute deviation from it. The window's lowest value is rejected
  if it lies more than ``k_low`` sigma below the line, its highest more than ``k_high``
  above; repeated until nothing changes or ``_MIN_KEPT`` values remain. (Siril tests every
  value; on a sorted stack the values that leave the band first are its ends.)
"""
from __future__ import annotations

import numpy as np
from scipy import stats

from datas_pipeline.kernels import MIN_KEPT as _MIN_KEPT


def gesd_critical(n: np.ndarray, i: int, alpha: float) -> np.ndarray:
    """Rosner's critical value for the (i+1)-th test on ``n`` values (``n`` per pixel)."""
    m = np.maximum(n - i, 3).astype(np.float64)
    p = 1.0 - alpha / (2.0 * m)
    t = stats.t.ppf(p, m - 2.0)
    return (m - 1.0) * t / np.sqrt((m - 2.0 + t**2) * m)


def _window_moments(s: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count, mean and sample standard deviation of ``s[lo:hi]`` per column (float64)."""
    k = np.arange(s.shape[0])[:, None]
    inside = (k >= lo[None, :]) & (k < hi[None, :])
    n = inside.sum(axis=0)
    d = np.where(inside, s, 0.0).astype(np.float64)
    mean = d.sum(axis=0) / np.maximum(n, 1)
    dev = np.where(inside, d - mean[None, :], 0.0)
    sd = np.sqrt((dev * dev).sum(axis=0) / np.maximum(n - 1, 1))
    return n, mean, sd


def gesd_window(s: np.ndarray, n_valid: np.ndarray, max_fraction: float, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    """Window ``[lo, hi)`` of each column of the sorted stack ``s`` (N, P) after GESD rejection.

    ``n_valid`` values per column are valid (blanks sort last); ``max_fraction`` of them at
    most are tested; ``alpha`` is the significance.
    """
    lo = np.zeros(s.shape[1], dtype=np.int64)
    hi = n_valid.astype(np.int64).copy()
    steps = int(np.floor(max_fraction * s.shape[0]))
    removed_low = np.zeros((steps, s.shape[1]), dtype=bool)
    outliers = np.zeros(s.shape[1], dtype=np.int64)
    cols = np.arange(s.shape[1])
    for i in range(steps):
        active = (hi - lo) > _MIN_KEPT
        if not active.any():
            break
        n, mean, sd = _window_moments(s, lo, hi)
        low_dev = mean - s[np.minimum(lo, s.shape[0] - 1), cols]
        high_dev = s[np.maximum(hi - 1, 0), cols] - mean
        take_low = low_dev > high_dev
        with np.errstate(divide="ignore", invalid="ignore"):
            r = np.where(sd > 0, np.maximum(low_dev, high_dev) / sd, 0.0)
        exceeds = active & (r > gesd_critical(n_valid, i, alpha))
        outliers = np.where(exceeds, i + 1, outliers)
        removed_low[i] = take_low
        lo = np.where(active & take_low, lo + 1, lo)
        hi = np.where(active & ~take_low, hi - 1, hi)
    # Keep exactly the first ``outliers`` removals of each column.
    taken = np.arange(steps)[:, None] < outliers[None, :]
    low_count = (removed_low & taken).sum(axis=0)
    high_count = (~removed_low & taken).sum(axis=0)
    return low_count, n_valid.astype(np.int64) - high_count


def linear_fit_window(s: np.ndarray, n_valid: np.ndarray, k_low: float, k_high: float,
                      max_iterations: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Window ``[lo, hi)`` of each column of the sorted stack ``s`` (N, P) after linear-fit rejection."""
    lo = np.zeros(s.shape[1], dtype=np.int64)
    hi = n_valid.astype(np.int64).copy()
    k = np.arange(s.shape[0], dtype=np.float64)[:, None]
    cols = np.arange(s.shape[1])
    for _ in range(max_iterations):
        active = (hi - lo) > _MIN_KEPT
        if not active.any():
            break
        inside = (k >= lo[None, :]) & (k < hi[None, :])
        n = inside.sum(axis=0).astype(np.float64)
        x = np.where(inside, k - lo[None, :], 0.0)
        y = np.where(inside, s, 0.0).astype(np.float64)
        sx, sy = x.sum(axis=0), y.sum(axis=0)
        sxx, sxy = (x * x).sum(axis=0), (x * y).sum(axis=0)
        with np.errstate(divide="ignore", invalid="ignore"):
            slope = (n * sxy - sx * sy) / (n * sxx - sx * sx)
            intercept = (sy - slope * sx) / n
            sigma = np.where(inside, np.abs(y - (slope * x + intercept)), 0.0).sum(axis=0) / n
        first = s[np.minimum(lo, s.shape[0] - 1), cols]
        last = s[np.maximum(hi - 1, 0), cols]
        drop_low = active & (first < intercept - k_low * sigma)
        drop_high = active & (last > slope * (n - 1) + intercept + k_high * sigma)
        # Never below _MIN_KEPT values: drop one end only if both would go too far.
        both = drop_low & drop_high & ((hi - lo) - 2 < _MIN_KEPT)
        drop_high &= ~both
        if not (drop_low | drop_high).any():
            break
        lo = np.where(drop_low, lo + 1, lo)
        hi = np.where(drop_high, hi - 1, hi)
    return lo, hi
