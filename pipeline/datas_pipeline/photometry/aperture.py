"""Aperture photometry with a local sky annulus and CCD-equation errors.

Fluxes are in ADU (sums over the aperture, sky removed), errors in ADU from the CCD
equation (Merline & Howell 1995) in electrons:

    sigma² = F g + n_pix (1 + n_pix / n_sky) (S g + D t + R² + (g sigma_q)²)

with F the source and S the sky per pixel (ADU), g the gain (e-/ADU), D the dark current
(e-/s/px) whose shot noise the dark subtraction leaves behind, t the exposure (s), R the
read noise (e-) and sigma_q = 0.289 ADU the digitisation noise. The (1 + n_pix/n_sky)
factor is the error of the sky estimated from ``n_sky`` annulus pixels.

Differential photometry and zero points live in :mod:`datas_pipeline.photometry.differential`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import sep

from datas_pipeline.detection.extract import as_sep_array
from datas_pipeline.errors import PipelineError

PHOT_DTYPE = [
    ("x", "f8"), ("y", "f8"), ("flux", "f8"), ("flux_err", "f8"), ("sky", "f8"), ("sky_rms", "f8"),
    ("area", "f8"), ("sky_pixels", "i8"), ("snr", "f8"), ("mag", "f8"), ("mag_err", "f8"), ("flag", "i8"),
]
# Flag bits: the aperture touched the edge or masked pixels; too few sky pixels; saturated.
FLAG_EDGE = 1
FLAG_FEW_SKY = 2
FLAG_SATURATED = 4
DIGITISATION_ADU = 1.0 / np.sqrt(12.0)
MAG_ERR_FACTOR = 2.5 / np.log(10.0)


@dataclass(frozen=True)
class Apertures:
    """Aperture radius and sky annulus (inner, outer), pixels, from the frame's FWHM (px).

    The one aperture rule of the project: the server's photometry stage, the command line's
    ``photometry`` and the site agent measure a frame with the same apertures. Radius
    1.5 x FWHM (at least 3 px), near the S/N optimum for a Moffat star and forgiving of small
    centring errors; the annulus starts clear of the wings (3 x FWHM, at least 3 px beyond the
    aperture) and holds enough sky (to 5 x FWHM, at least 8 px beyond the aperture).
    """

    radius: float
    inner: float
    outer: float

    @classmethod
    def for_fwhm(cls, fwhm_px: float) -> Apertures:
        fwhm = float(fwhm_px) if np.isfinite(fwhm_px) and fwhm_px > 0 else 3.0
        radius = max(3.0, 1.5 * fwhm)
        return cls(radius, max(3.0 * fwhm, radius + 3.0), max(5.0 * fwhm, radius + 8.0))


@dataclass(frozen=True)
class NoiseModel:
    """The camera's noise: ``gain`` e-/ADU, ``read_noise`` e- rms, ``dark_current`` e-/s/px.

    Values are per single frame. For the mean of N frames pass the effective gain N x g
    and read noise sqrt(N) x R.
    """

    gain: float = 1.0
    read_noise: float = 0.0
    dark_current: float = 0.0
    exposure_s: float = 0.0

    def __post_init__(self) -> None:
        if not self.gain > 0:
            raise PipelineError(f"gain must be positive e-/ADU, got {self.gain}")
        if self.read_noise < 0 or self.dark_current < 0 or self.exposure_s < 0:
            raise PipelineError("read noise, dark current and exposure cannot be negative")


def annulus_sky(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, r_in: float, r_out: float,
    mask: np.ndarray | None = None, clip_sigma: float = 3.0, iterations: int = 5,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sky level per pixel (ADU), its pixel rms and pixel count in an annulus around each star.

    The level is the sigma-clipped median (stars and cosmic rays in the annulus are clipped).
    """
    if not 0 < r_in < r_out:
        raise PipelineError(f"the sky annulus needs 0 < inner < outer radius, got {r_in}, {r_out}")
    ny, nx = image.shape
    half = int(np.ceil(r_out)) + 1
    offsets = np.arange(-half, half + 1)
    ix, iy = np.rint(x).astype(int), np.rint(y).astype(int)
    cols = ix[:, None, None] + offsets[None, None, :]
    rows = iy[:, None, None] + offsets[None, :, None]
    r = np.hypot(cols - x[:, None, None], rows - y[:, None, None])
    inside = (cols >= 0) & (cols < nx) & (rows >= 0) & (rows < ny) & (r >= r_in) & (r <= r_out)
    values = image[np.clip(rows, 0, ny - 1), np.clip(cols, 0, nx - 1)].astype(np.float64)
    if mask is not None:
        inside &= ~mask[np.clip(rows, 0, ny - 1), np.clip(cols, 0, nx - 1)]
    inside &= np.isfinite(values)
    values = np.where(inside, values, np.nan).reshape(len(x), -1)
    for _ in range(iterations):
        level = np.nanmedian(values, axis=1)
        spread = np.nanstd(values, axis=1)
        out = np.abs(values - level[:, None]) > clip_sigma * spread[:, None]
        if not out.any():
            break
        values[out] = np.nan
    count = np.isfinite(values).sum(axis=1)
    return np.nanmedian(values, axis=1), np.nanstd(values, axis=1), count


def aperture_photometry(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    radius: float,
    annulus: tuple[float, float],
    noise: NoiseModel = NoiseModel(),
    mask: np.ndarray | None = None,
    saturation: float | None = None,
) -> np.ndarray:
    """Circular-aperture photometry of the positions (x, y) (0-based px) on ``image`` (ADU).

    ``radius`` and ``annulus`` = (inner, outer) in px. The image must still contain its sky
    (calibrated, not background-subtracted): the annulus measures it locally.
    Returns a structured array (``PHOT_DTYPE``); ``mag`` = -2.5 log10(flux / exposure) when
    the exposure is known, else of the flux itself, NaN for non-positive fluxes.
    """
    data = as_sep_array(image)
    x = np.atleast_1d(np.asarray(x, dtype=np.float64))
    y = np.atleast_1d(np.asarray(y, dtype=np.float64))
    if radius <= 0:
        raise PipelineError(f"the aperture radius must be positive, got {radius}")
    finite = np.isfinite(data)
    bad = ~finite if mask is None else (np.asarray(mask, bool) | ~finite)
    clean = np.where(finite, data, 0.0).astype(np.float32)
    total, _, aflag = sep.sum_circle(clean, x, y, radius, mask=bad, subpix=0)
    area, _, _ = sep.sum_circle(np.ones_like(clean), x, y, radius, mask=bad, subpix=0)
    sky, sky_rms, n_sky = annulus_sky(clean, x, y, *annulus, mask=bad)
    out = np.zeros(len(x), dtype=PHOT_DTYPE)
    out["x"], out["y"] = x, y
    out["flux"] = total - sky * area
    out["sky"], out["sky_rms"], out["area"], out["sky_pixels"] = sky, sky_rms, area, n_sky
    out["flux_err"] = ccd_equation_error(out["flux"], sky, area, n_sky, noise)
    flag = np.where(aflag != 0, FLAG_EDGE, 0) | np.where(n_sky < np.maximum(10, area), FLAG_FEW_SKY, 0)
    flag |= np.where(area < np.pi * radius**2 * 0.999, FLAG_EDGE, 0)
    if saturation is not None:
        peak = _aperture_peak(data, x, y, radius)
        flag |= np.where(peak >= saturation, FLAG_SATURATED, 0)
    out["flag"] = flag
    with np.errstate(divide="ignore", invalid="ignore"):
        out["snr"] = out["flux"] / out["flux_err"]
        rate = out["flux"] / (noise.exposure_s if noise.exposure_s > 0 else 1.0)
        out["mag"] = np.where(out["flux"] > 0, -2.5 * np.log10(rate), np.nan)
        out["mag_err"] = np.where(out["flux"] > 0, MAG_ERR_FACTOR * out["flux_err"] / out["flux"], np.nan)
    return out


def ccd_equation_error(
    flux: np.ndarray, sky: np.ndarray, area: np.ndarray, n_sky: np.ndarray, noise: NoiseModel
) -> np.ndarray:
    """Flux error (ADU) from the CCD equation; see the module docstring."""
    g = noise.gain
    per_pixel = (np.clip(sky, 0, None) * g + noise.dark_current * noise.exposure_s + noise.read_noise**2
                 + (g * DIGITISATION_ADU) ** 2)
    sky_term = 1.0 + area / np.maximum(n_sky, 1)
    variance_e = np.clip(flux, 0, None) * g + area * sky_term * per_pixel
    return np.sqrt(variance_e) / g


def _aperture_peak(data: np.ndarray, x: np.ndarray, y: np.ndarray, radius: float) -> np.ndarray:
    ny, nx = data.shape
    half = int(np.ceil(radius))
    offsets = np.arange(-half, half + 1)
    cols = np.clip(np.rint(x).astype(int)[:, None, None] + offsets[None, None, :], 0, nx - 1)
    rows = np.clip(np.rint(y).astype(int)[:, None, None] + offsets[None, :, None], 0, ny - 1)
    return np.nanmax(data[rows, cols].reshape(len(x), -1), axis=1)


def recenter(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm: float, max_shift: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Windowed centroids near predicted positions (e.g. from a WCS).

    Returns new x, y and a bool array, False where the centroid wandered more than
    ``max_shift`` px (default one FWHM) and the prediction was kept.
    """
    data = as_sep_array(image)
    background = float(np.nanmedian(data))
    residual = np.where(np.isfinite(data), data - background, 0.0).astype(np.float32)
    sigma = max(fwhm, 1.0) / 2.3548
    new_x, new_y, _ = sep.winpos(residual, np.asarray(x, float), np.asarray(y, float), sigma)
    limit = fwhm if max_shift is None else max_shift
    moved = np.hypot(new_x - x, new_y - y)
    ok = np.isfinite(moved) & (moved <= limit)
    return np.where(ok, new_x, x), np.where(ok, new_y, y), ok
