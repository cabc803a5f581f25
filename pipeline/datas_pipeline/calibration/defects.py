"""Cosmetic defects: a bad-pixel map from darks and flats, and cleaning hot pixels and cosmic rays.

Hot pixels are fixed in the detector, so they are found once from a master dark and masked
in every light; cosmic rays are random and sharper than any star, so they are found per
frame with L.A.Cosmic (astroscrappy, van Dokkum 2001).
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage

from datas_pipeline.errors import PipelineError
from datas_pipeline.robust import MAD_TO_SIGMA, robust_sigma  # noqa: F401 - the names defects always offered


def hot_pixel_map(master_dark: np.ndarray, threshold_sigma: float = 5.0, min_excess: float = 0.0) -> np.ndarray:
    """Pixels whose dark signal (ADU, bias removed) stands ``threshold_sigma`` above the rest.

    ``min_excess`` (ADU) ignores pixels that are statistically but not practically hot
    (very long darks with tiny noise).
    """
    dark = np.asarray(master_dark, dtype=np.float64)
    level = float(np.nanmedian(dark))
    sigma = robust_sigma(dark)
    if not np.isfinite(sigma) or sigma == 0:
        sigma = float(np.nanstd(dark)) or 1.0
    return (dark - level > max(threshold_sigma * sigma, min_excess)) & np.isfinite(dark)


def dead_pixel_map(master_flat: np.ndarray, low: float = 0.7, high: float = 1.3, box: int = 15) -> np.ndarray:
    """Pixels whose flat response differs from their neighbourhood's by more than the limits.

    Comparing with a local median (``box`` px) keeps vignetting and dust shadows, which a flat
    corrects, out of the map; only pixels that respond unlike their neighbours are bad.
    """
    flat = np.asarray(master_flat, dtype=np.float64)
    local = ndimage.median_filter(np.nan_to_num(flat, nan=1.0), size=box, mode="reflect")
    ratio = flat / np.where(local > 0, local, np.nan)
    return ~np.isfinite(ratio) | (ratio < low) | (ratio > high)


def bad_pixel_map(
    master_dark: np.ndarray | None = None, master_flat: np.ndarray | None = None, threshold_sigma: float = 5.0
) -> np.ndarray:
    """Hot pixels from a bias-subtracted master dark, dead and cold ones from a master flat."""
    if master_dark is None and master_flat is None:
        raise PipelineError("a bad-pixel map needs a master dark, a master flat, or both")
    shape = (master_dark if master_dark is not None else master_flat).shape
    mask = np.zeros(shape, dtype=bool)
    if master_dark is not None:
        mask |= hot_pixel_map(master_dark, threshold_sigma)
    if master_flat is not None:
        if master_flat.shape != shape:
            raise PipelineError(f"dark {shape} and flat {master_flat.shape} have different shapes")
        mask |= dead_pixel_map(master_flat)
    return mask


def clean_pixels(image: np.ndarray, mask: np.ndarray, box: int = 5) -> np.ndarray:
    """Replace masked (and NaN) pixels by the median of the good pixels in a ``box`` square.

    Works on the bad pixels only, so a sparse map costs microseconds; a pixel with no good
    neighbour keeps the frame median.
    """
    data = np.array(image, dtype=np.float32)
    if mask.shape != data.shape:
        raise PipelineError(f"mask shape {mask.shape} does not match the image shape {data.shape}")
    bad = mask | ~np.isfinite(data)
    rows, cols = np.nonzero(bad)
    if rows.size == 0:
        return data
    half = box // 2
    offsets = np.arange(-half, half + 1)
    rr = np.clip(rows[:, None, None] + offsets[None, :, None], 0, data.shape[0] - 1)
    cc = np.clip(cols[:, None, None] + offsets[None, None, :], 0, data.shape[1] - 1)
    neighbours = np.where(bad[rr, cc], np.nan, data[rr, cc]).reshape(rows.size, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN neighbourhoods are handled below
        values = np.nanmedian(neighbours, axis=1)
    fallback = float(np.nanmedian(data[~bad])) if (~bad).any() else 0.0
    data[rows, cols] = np.where(np.isfinite(values), values, fallback)
    return data


def clean_cosmic_rays(
    image: np.ndarray,
    gain: float = 1.0,
    read_noise: float = 5.0,
    mask: np.ndarray | None = None,
    sigma_clip: float = 4.5,
    object_limit: float = 5.0,
    saturation: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Find and repair cosmic-ray hits with L.A.Cosmic.

    ``image`` in ADU with the sky still in it (the noise model needs it); ``gain`` e-/ADU,
    ``read_noise`` e-. Returns the cleaned image (float32) and the boolean hit mask.
    """
    import astroscrappy

    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise PipelineError(f"cosmic-ray cleaning needs a 2-D image, got shape {data.shape}")
    inmask = ~np.isfinite(data) if mask is None else (mask | ~np.isfinite(data))
    filled = np.where(np.isfinite(data), data, np.nanmedian(data)).astype(np.float32)
    hits, cleaned = astroscrappy.detect_cosmics(
        filled, inmask=inmask, gain=gain, readnoise=read_noise, sigclip=sigma_clip, objlim=object_limit,
        satlevel=saturation if saturation is not None else np.inf, cleantype="medmask", verbose=False,
    )
    return np.asarray(cleaned, dtype=np.float32), np.asarray(hits, dtype=bool)
