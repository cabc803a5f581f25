"""Robust location and scale: the median and the MAD scaled to a Gaussian sigma.

Every stage that needs a noise or spread estimate immune to stars, hot pixels and cosmic
rays (calibration, grading, stacking normalisation, live stacking, stretching) uses these,
so one frame's "sigma" means the same thing everywhere.
"""
from __future__ import annotations

import numpy as np

# 1 / Phi^-1(3/4): the MAD of a Gaussian times this is its standard deviation.
MAD_TO_SIGMA = 1.482602218505602


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
    median = float(np.median(finite))
    return median, float(MAD_TO_SIGMA * np.median(np.abs(finite - median)))


def robust_sigma(values: np.ndarray) -> float:
    """Standard deviation estimated from the median absolute deviation (finite values only)."""
    return median_sigma(values)[1]
