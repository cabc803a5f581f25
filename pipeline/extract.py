"""Source extraction: background, detection, centroids, shapes and fluxes (sep underneath).

The one extraction every stage shares (grading, photometry, registration, live stacking,
the agent). Coordinates are 0-based pixel centres in numpy order: ``x`` is the column,
``y`` the row. Fluxes are in the image's units (ADU unless the caller converted).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

from pipeline.errors import PipelineError

# Columns every SourceTable carries, in this order.
SOURCE_COLUMNS = (
    "x", "y", "flux", "flux_err", "peak", "a", "b", "theta", "fwhm", "elongation", "npix", "flag",
)


@dataclass(frozen=True)
class Background:
    """A background model: ``level`` and ``rms`` maps, and their global values (image units)."""

    level: np.ndarray
    rms: np.ndarray
    global_level: float
    global_rms: float


def as_sep_array(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous native-endian float32 array, as sep requires."""
    data = np.asarray(image)
    if data.ndim != 2:
        raise PipelineError(f"expected a 2-D image, got an array of shape {data.shape}")
    return np.ascontiguousarray(data, dtype=np.float32)


def estimate_background(
    image: np.ndarray, mask: np.ndarray | None = None, box_size: int = 64, filter_size: int = 3
) -> Background:
    """Mesh background and noise (SExtractor's algorithm) in image units."""
    data = as_sep_array(image)
    bkg = sep.Background(data, mask=mask, bw=box_size, bh=box_size, fw=filter_size, fh=filter_size)
    return Background(bkg.back(), bkg.rms(), float(bkg.globalback), float(bkg.globalrms))


def extract_sources(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    threshold_sigma: float = 5.0,
    min_area: int = 5,
    background: Background | None = None,
    max_sources: int | None = None,
) -> np.ndarray:
    """Detect sources and measure them.

    Parameters
    ----------
    image : 2-D array
        The frame, in ADU (or any linear unit).
    mask : 2-D bool array, optional
        True where pixels must be ignored.
    threshold_sigma : float
        Detection threshold in units of the background noise.
    min_area : int
        Minimum connected pixels above the threshold.
    background : Background, optional
        A precomputed background; estimated when omitted.
    max_sources : int, optional
        Keep only the brightest ``max_sources``.

    Returns
    -------
    numpy structured array with the columns in ``SOURCE_COLUMNS``, brightest first.
    ``fwhm`` (px) comes from the half-light radius of a Gaussian equivalent; ``elongation``
    is a/b.
    """
    data = as_sep_array(image)
    bkg = background or estimate_background(data, mask=mask)
    residual = data - bkg.level
    objects = sep.extract(residual, threshold_sigma, err=bkg.rms, mask=mask, minarea=min_area)
    table = np.zeros(len(objects), dtype=[(name, "f8") for name in SOURCE_COLUMNS])
    if len(objects) == 0:
        return table
    table["x"], table["y"] = objects["x"], objects["y"]
    table["peak"] = objects["peak"]
    table["a"], table["b"], table["theta"] = objects["a"], objects["b"], objects["theta"]
    table["npix"] = objects["npix"]
    table["flag"] = objects["flag"]
    table["elongation"] = objects["a"] / np.maximum(objects["b"], 1e-6)
    flux, flux_err, _ = sep.sum_circle(
        residual, objects["x"], objects["y"], 3.0 * np.maximum(objects["a"], 1.0), err=bkg.rms, mask=mask
    )
    table["flux"], table["flux_err"] = flux, flux_err
    radius, _ = sep.flux_radius(
        residual, objects["x"], objects["y"], 6.0 * np.maximum(objects["a"], 1.0), 0.5,
        normflux=flux, subpix=5,
    )
    # For a Gaussian the half-light radius is FWHM / 2.
    table["fwhm"] = 2.0 * radius
    table = table[np.argsort(-table["flux"])]
    return table[:max_sources] if max_sources else table
