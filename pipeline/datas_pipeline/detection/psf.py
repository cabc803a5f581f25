"""Star profiles: a batched Moffat fit that measures FWHM without the half-light bias.

A half-light radius turned into a "Gaussian FWHM" over-reads real (Moffat-winged) stars by
about 25 %. Fitting a circular Moffat profile, integrated over each pixel, to a stamp around
every star gives the FWHM of the core directly. All stars are fitted at once with a
vectorised Levenberg-Marquardt, so thousands of stars cost milliseconds, not a Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Sub-pixel samples per axis when integrating the model over a pixel. Three keeps the
# pixel-window bias on the FWHM below 0.3 % for a 3 px star.
_OVERSAMPLE = 3
_BETA_RANGE = (1.3, 12.0)
# Stars fitted per batch: bounds the memory of the (stars x pixels x samples) arrays.
_BATCH = 400


@dataclass(frozen=True)
class MoffatFit:
    """Per-star Moffat parameters; NaN where the fit failed.

    ``fwhm`` and ``alpha`` in px, ``amplitude`` and ``offset`` in image units (per pixel).
    """

    fwhm: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    amplitude: np.ndarray
    offset: np.ndarray
    converged: np.ndarray


def moffat_fwhm(alpha: np.ndarray | float, beta: np.ndarray | float) -> np.ndarray:
    """FWHM (px) of a Moffat profile with core width ``alpha`` (px) and index ``beta``."""
    return 2.0 * np.asarray(alpha) * np.sqrt(2.0 ** (1.0 / np.asarray(beta)) - 1.0)


def cut_stamps(
    image: np.ndarray, x: np.ndarray, y: np.ndarray, half: int, fill: float = np.nan
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Square stamps ``(n, 2*half+1, 2*half+1)`` centred on the nearest pixel to (x, y).

    Returns the stamps and the integer stamp-centre columns and rows. Pixels beyond the edge
    are ``fill``.
    """
    ny, nx = image.shape
    ix = np.rint(x).astype(int)
    iy = np.rint(y).astype(int)
    offsets = np.arange(-half, half + 1)
    cols = ix[:, None, None] + offsets[None, None, :]
    rows = iy[:, None, None] + offsets[None, :, None]
    inside = (cols >= 0) & (cols < nx) & (rows >= 0) & (rows < ny)
    stamps = image[np.clip(rows, 0, ny - 1), np.clip(cols, 0, nx - 1)].astype(np.float64)
    stamps[~inside] = fill
    return stamps, ix, iy


def fit_moffat(
    image: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    half_light_radius: np.ndarray,
    peak: np.ndarray,
    half: int = 7,
    stamp_weights: np.ndarray | None = None,
    iterations: int = 25,
) -> MoffatFit:
    """Fit a circular, pixel-integrated Moffat profile plus a constant at fixed centres.

    Parameters
    ----------
    image : 2-D array
        Background-subtracted image (image units).
    x, y : arrays
        Star centres (0-based px); they are held fixed, since the extraction's centroids are
        already better than the fit would make them.
    half_light_radius, peak : arrays
        Starting guesses (px, image units).
    half : int
        Stamp half-size (px).
    stamp_weights : bool array (n, 2*half+1, 2*half+1), optional
        False where a pixel must stay out of that star's fit (neighbours, saturation, masks).

    Returns
    -------
    MoffatFit
    """
    n = len(x)
    out = {k: np.full(n, np.nan) for k in ("fwhm", "alpha", "beta", "amplitude", "offset")}
    converged = np.zeros(n, dtype=bool)
    for start in range(0, n, _BATCH):
        sl = slice(start, min(start + _BATCH, n))
        result = _fit_batch(
            image, np.asarray(x[sl], float), np.asarray(y[sl], float),
            np.asarray(half_light_radius[sl], float), np.asarray(peak[sl], float), half,
            None if stamp_weights is None else stamp_weights[sl], iterations,
        )
        for key, value in zip(("alpha", "beta", "amplitude", "offset"), result[:4], strict=True):
            out[key][sl] = value
        converged[sl] = result[4]
    out["fwhm"] = moffat_fwhm(out["alpha"], out["beta"])
    bad = ~converged
    for key in out:
        out[key][bad] = np.nan
    return MoffatFit(converged=converged, **out)


def _model(params: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Model values and Jacobian for params (amplitude, ln alpha, ln(beta-1), offset).

    ``r2`` is (n, pixels, samples): squared distances of sub-pixel samples to the centre.
    """
    amp, ln_alpha, ln_bm1, offset = (params[:, i, None, None] for i in range(4))
    alpha2 = np.exp(2.0 * ln_alpha)
    beta = 1.0 + np.exp(ln_bm1)
    q = r2 / alpha2
    log1q = np.log1p(q)
    prof = np.exp(-beta * log1q)
    shape = prof.mean(axis=2)
    d_ln_alpha = (2.0 * beta * q * prof / (1.0 + q)).mean(axis=2)
    d_ln_bm1 = (-(beta - 1.0) * log1q * prof).mean(axis=2)
    amp2 = amp[:, :, 0]
    model = amp2 * shape + offset[:, :, 0]
    jac = np.stack([shape, amp2 * d_ln_alpha, amp2 * d_ln_bm1, np.ones_like(shape)], axis=2)
    return model, jac


def _fit_batch(image, x, y, hlr, peak, half, stamp_weights, iterations):
    stamps, ix, iy = cut_stamps(image, x, y, half)
    weights = np.isfinite(stamps)
    if stamp_weights is not None:
        weights &= stamp_weights
    n = len(x)
    size = 2 * half + 1
    stamps = np.where(weights, stamps, 0.0).reshape(n, -1)
    w = weights.reshape(n, -1).astype(np.float64)
    sub = (np.arange(_OVERSAMPLE) + 0.5) / _OVERSAMPLE - 0.5
    offsets = np.arange(-half, half + 1)
    gx = (offsets[None, :, None, None] + sub[None, None, None, :]) + (ix - x)[:, None, None, None]
    gy = (offsets[None, :, None, None] + sub[None, None, None, :]) + (iy - y)[:, None, None, None]
    # (n, rows, cols, sy, sx) -> (n, pixels, samples)
    r2 = (gy[:, :, None, :, None] ** 2 + gx[:, None, :, None, :] ** 2).reshape(n, size * size, -1)

    beta0 = 3.0
    hlr = np.clip(np.nan_to_num(hlr, nan=1.5), 0.5, half)
    alpha0 = hlr / np.sqrt(2.0 ** (1.0 / (beta0 - 1.0)) - 1.0)
    params = np.stack(
        [np.maximum(peak, 1e-3), np.log(alpha0), np.full(n, np.log(beta0 - 1.0)), np.zeros(n)], axis=1
    )
    lam = np.full(n, 1e-2)
    model, jac = _model(params, r2)
    chi2 = (w * (stamps - model) ** 2).sum(axis=1)
    active = np.arange(n)
    eye = np.eye(4)
    for _ in range(iterations):
        if active.size == 0:
            break
        a = active
        jw = jac[a] * w[a, :, None]
        jtj = np.matmul(jw.transpose(0, 2, 1), jac[a])
        grad = np.matmul(jw.transpose(0, 2, 1), (stamps[a] - model[a])[:, :, None])
        damped = jtj + lam[a, None, None] * (jtj * eye + 1e-12 * eye)
        try:
            step = np.linalg.solve(damped, grad)[:, :, 0]
        except np.linalg.LinAlgError:
            step = np.matmul(np.linalg.pinv(damped), grad)[:, :, 0]
        trial = params[a] + step
        trial[:, 2] = np.clip(trial[:, 2], np.log(_BETA_RANGE[0] - 1), np.log(_BETA_RANGE[1] - 1))
        trial[:, 1] = np.clip(trial[:, 1], np.log(0.2), np.log(4.0 * half))
        t_model, t_jac = _model(trial, r2[a])
        t_chi2 = (w[a] * (stamps[a] - t_model) ** 2).sum(axis=1)
        better = t_chi2 < chi2[a]
        done = (better & (chi2[a] - t_chi2 < 1e-6 * chi2[a])) | (lam[a] > 1e6)
        moved = a[better]
        params[moved] = trial[better]
        model[moved], jac[moved], chi2[moved] = t_model[better], t_jac[better], t_chi2[better]
        lam[a] = np.where(better, lam[a] * 0.3, lam[a] * 10.0)
        active = a[~done]
    # A fit that ran out of iterations while still improving is still a good estimate; a fit
    # with a non-positive amplitude or too few pixels is not.
    usable = (params[:, 0] > 0) & (w.sum(axis=1) >= 9) & np.isfinite(chi2)
    alpha = np.exp(params[:, 1])
    beta = 1.0 + np.exp(params[:, 2])
    return alpha, beta, params[:, 0], params[:, 3], usable
