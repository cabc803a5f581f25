"""Sources sharper than any star: hot pixels and cosmic rays in raw frames.

A star is the PSF sampled by pixels, so its brightest pixel has bright neighbours; a hot
pixel or a cosmic-ray hit stands alone. The measure is DAOFIND's idea in its simplest form,
``sharpness = 1 - mean(8 neighbours) / peak`` on the background-subtracted image: about 1
for a lone pixel, 0.91 for a pixel-integrated Gaussian of FWHM 1 px, 0.59 for 2 px, less
for wider or off-centre stars.

:func:`sub_psf_sources` flags sources sharper than a Gaussian of a floor FWHM, the floor
being half the frame's own stellar FWHM (measured on the sources that pass a first, absolute
cut at 1 px): so a raw frame, whose hot pixels outnumber its stars, grades like the same
frame calibrated.
"""
from __future__ import annotations

import math

import numpy as np

# No star sampled by pixels is sharper than a Gaussian of this FWHM (px).
ABSOLUTE_MIN_FWHM_PX = 1.0
# Sources sharper than a Gaussian of this fraction of the frame's stellar FWHM are not stars.
RELATIVE_MIN_FWHM = 0.5


def gaussian_sharpness(fwhm_px: float) -> float:
    """Sharpness of a pixel-integrated Gaussian star of ``fwhm_px`` centred on a pixel."""
    sigma = fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0)))

    def cdf(t: float) -> float:
        return 0.5 * (1.0 + math.erf(t / (sigma * math.sqrt(2.0))))

    centre = cdf(0.5) - cdf(-0.5)
    side = cdf(1.5) - cdf(0.5)
    ratio = side / centre
    # Four edge neighbours at ratio, four corners at ratio squared (separable profile).
    return 1.0 - 0.5 * (ratio + ratio**2)


def point_sharpness(residual: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sharpness at the brightest pixel within one pixel of each (x, y) (0-based px)."""
    ny, nx = residual.shape
    padded = np.pad(residual, 2, mode="constant", constant_values=np.nan)
    cx = np.clip(np.rint(np.asarray(x)).astype(int), 0, nx - 1) + 2
    cy = np.clip(np.rint(np.asarray(y)).astype(int), 0, ny - 1) + 2
    offsets = np.array([-1, 0, 1])
    # The brightest pixel of the 3x3 box around each rounded centroid.
    box = padded[cy[:, None, None] + offsets[None, :, None], cx[:, None, None] + offsets[None, None, :]]
    flat = np.where(np.isfinite(box), box, -np.inf).reshape(len(cx), 9)
    best = np.argmax(flat, axis=1)
    py, px = cy + best // 3 - 1, cx + best % 3 - 1
    around = padded[py[:, None, None] + offsets[None, :, None], px[:, None, None] + offsets[None, None, :]]
    peak = around[:, 1, 1]
    neighbours = (np.nansum(around, axis=(1, 2)) - peak) / np.maximum(
        np.sum(np.isfinite(around), axis=(1, 2)) - 1, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(peak > 0, 1.0 - neighbours / peak, 0.0)


def sub_psf_sources(residual: np.ndarray, sources: np.ndarray, shaped: np.ndarray | None = None) -> np.ndarray:
    """True for sources sharper than the frame's stars allow (hot pixels, cosmic rays).

    ``sources`` needs ``x``, ``y`` and ``fwhm`` (px); ``shaped`` selects those whose FWHM is
    trusted for the frame's PSF (all when None).
    """
    if len(sources) == 0:
        return np.zeros(0, dtype=bool)
    sharpness = point_sharpness(residual, sources["x"], sources["y"])
    sharp = sharpness > gaussian_sharpness(ABSOLUTE_MIN_FWHM_PX)
    trusted = ~sharp if shaped is None else (~sharp & shaped)
    fwhm = sources["fwhm"][trusted & np.isfinite(sources["fwhm"])]
    if fwhm.size >= 3:
        floor = max(ABSOLUTE_MIN_FWHM_PX, RELATIVE_MIN_FWHM * float(np.median(fwhm)))
        sharp |= sharpness > gaussian_sharpness(floor)
    return sharp
