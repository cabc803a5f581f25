"""Robust location and scale: the median and the MAD scaled to a Gaussian sigma.

Every stage that needs a noise or spread estimate immune to stars, hot pixels and cosmic
rays (calibration, grading, stacking normalisation, live stacking, stretching) uses these,
so one frame's "sigma" means the same thing everywhere.
"""
from __future__ import annotations

import numpy as np

# 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its standard deviation.
MAD_TO_SIGMA = 1.482602218505602


def median(values: np.ndarray) -> float:
    """``np.median`` of all of ``values``, to the bit, in a sixth of the time on a frame.

    ``np.median`` partitions around both middle elements and then scans for NaN; one
    partition at the upper middle is enough, as the lower middle is the largest value
    below it. NaN anywhere gives NaN, as ``np.median`` does.
    """
    flat = np.asarray(values).ravel()
    n = flat.size
    if n == 0 or flat.dtype.kind not in "fiu":
        return float(np.median(flat))
    if flat.dtype.kind == "f" and np.isnan(flat).any():
        return float("nan")
    k = n // 2
    part = np.partition(flat, k)
    if n % 2:
        return float(part[k])
    # np.median averages the two middle values in the array's own precision (float64 for integers).
    pair = np.array([part[:k].max(), part[k]], dtype=flat.dtype if flat.dtype.kind == "f" else np.float64)
    return float(np.mean(pair))


def median_sigma(values: np.ndarray) -> tuple[float, float]:
    """Median and MAD-based sigma of the finite values (NaN, NaN when there are none).

    Parameters
    ----------
    values : numpy.ndarray
        Any shape; non-finite values are ignored. Same unit as the result.
    """
    values = np.asarray(values)
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return float("nan"), float("nan")
    centre = median(finite)
    return centre, float(MAD_TO_SIGMA * median(np.abs(finite - centre)))


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (finite values only)."""
    return median_sigma(values)[1]
