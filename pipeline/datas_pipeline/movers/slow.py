"""Movers too slow to leave the median: sources of the stack whose centroid drifts with time.

An object that moves less than about two PSF widths over the whole sequence sits on the
same pixels in most frames, so the per-pixel median keeps it and no residual shows it. It
still shows as a source of the mean stack, and its centroid, measured in a few time-bin
stacks, moves linearly while a star's does not. The centroid errors are calibrated on the
stars themselves (their fitted motion must be noise), so registration jitter and
centroiding bias are absorbed by the calibration rather than guessed.
"""
from __future__ import annotations

import numpy as np

from datas_pipeline.movers.detect import local_peaks
from datas_pipeline.movers.sequence import gaussian_sigma, matched_filter
from datas_pipeline.movers.tracking import TRACK_DTYPE


def windowed_centroids(images: np.ndarray, x: np.ndarray, y: np.ndarray, fwhm_px: float,
                       iterations: int = 4) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian-windowed centroids of sources at ``(x, y)`` in each of ``images`` (K, ny, nx).

    Returns ``(cx, cy, flux)`` each ``(M, K)``; ``flux`` is the window-weighted sum (ADU).
    A window the size of the PSF converges on the centre of a symmetric profile.
    """
    k, ny, nx = images.shape
    half = int(np.ceil(2.0 * fwhm_px))
    ix = np.clip(np.rint(x).astype(int), half, nx - half - 1)
    iy = np.clip(np.rint(y).astype(int), half, ny - half - 1)
    off = np.arange(-half, half + 1)
    rows = iy[:, None, None] + off[None, :, None]
    cols = ix[:, None, None] + off[None, None, :]
    stamps = images[:, rows, cols]  # (K, M, s, s)
    stamps = np.moveaxis(stamps, 0, 1)  # (M, K, s, s)
    gx = cols[:, None].astype(float)
    gy = rows[:, None].astype(float)
    cx = np.repeat(np.asarray(x, float)[:, None], k, 1)
    cy = np.repeat(np.asarray(y, float)[:, None], k, 1)
    sw = gaussian_sigma(fwhm_px)
    flux = np.zeros_like(cx)
    for _ in range(iterations):
        w = np.exp(-((gx - cx[..., None, None]) ** 2 + (gy - cy[..., None, None]) ** 2) / (2 * sw * sw))
        wi = w * stamps
        flux = wi.sum(axis=(-1, -2))
        safe = np.where(flux > 0, flux, np.nan)
        # The windowed centroid converges as c <- c + 2 (m - c) for a Gaussian of the window's width.
        mx = (wi * gx).sum(axis=(-1, -2)) / safe
        my = (wi * gy).sum(axis=(-1, -2)) / safe
        cx = np.where(np.isfinite(mx), cx + 2.0 * (mx - cx), cx)
        cy = np.where(np.isfinite(my), cy + 2.0 * (my - cy), cy)
        cx = np.clip(cx, ix[:, None] - half + 1, ix[:, None] + half - 1)
        cy = np.clip(cy, iy[:, None] - half + 1, iy[:, None] + half - 1)
    return cx, cy, flux


def _weighted_line(t: np.ndarray, values: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, ...]:
    """Per-row weighted fit ``values = a + b t``: (a, b, sigma_a, sigma_b, chi2)."""
    w = 1.0 / sigma**2
    s, st, stt = w.sum(1), (w * t).sum(1), (w * t * t).sum(1)
    sy, sty = (w * values).sum(1), (w * t * values).sum(1)
    det = s * stt - st * st
    b = (s * sty - st * sy) / det
    a = (stt * sy - st * sty) / det
    chi2 = (w * (values - a[:, None] - b[:, None] * t) ** 2).sum(1)
    return a, b, np.sqrt(stt / det), np.sqrt(s / det), chi2


def slow_movers(bins: np.ndarray, bin_t: np.ndarray, bin_counts: np.ndarray, sigma_adu: float,
                fwhm_px: float, t_ref: float, v_max: float = 0.8, min_motion_px: float = 1.0,
                detect_snr: float = 6.0, z_threshold: float = 6.5, border: int = 8,
                noise_scale: float = 1.0, jitter_px: float = 0.05) -> tuple[np.ndarray, dict]:
    """Sources of the mean stack that drift linearly across the time-bin stacks.

    Parameters
    ----------
    bins : numpy.ndarray
        ``(K, ny, nx)`` mean of the sky-subtracted frames in each time bin (ADU).
    bin_t, bin_counts : numpy.ndarray
        Mean time (frame units) and number of frames of each bin.
    sigma_adu : float
        Typical single-frame pixel noise (ADU).
    noise_scale : float
        Ratio of the matched filter's measured noise to white noise's on the residuals
        (the stack, full of stars, cannot measure it itself).
    jitter_px : float
        Per-frame registration jitter (px rms), a floor on the centroid errors.
    min_motion_px : float
        Least total motion over the bins' span to count as a mover.
    z_threshold : float
        Motion significance (sigma, after calibration on the stars) to accept.

    Returns
    -------
    tracks, info
        ``TRACK_DTYPE`` rows (position at ``t_ref``; ``score`` the stack SNR) and a summary.
    """
    n = float(bin_counts.sum())
    mean = (bins * bin_counts[:, None, None]).sum(0) / n
    psf = gaussian_sigma(fwhm_px)
    snr, _ = matched_filter(mean, sigma_adu / np.sqrt(n), np.ones_like(mean), psf, border, scale=noise_scale)
    peaks = local_peaks(snr, detect_snr, size=5, max_peaks=20000)
    # The centroid window must fit inside the frame with room to move.
    edge = border + 2 * int(np.ceil(2.0 * fwhm_px))
    ny, nx = mean.shape
    inside = (peaks[:, 0] >= edge) & (peaks[:, 0] <= nx - 1 - edge) & (peaks[:, 1] >= edge) & (peaks[:, 1] <= ny - 1 - edge)
    peaks = peaks[inside] if len(peaks) else peaks
    info = {"sources": int(len(peaks))}
    if len(peaks) < 5:
        return np.zeros(0, TRACK_DTYPE), info
    x, y, stack_snr = peaks[:, 0], peaks[:, 1], peaks[:, 2]
    cx, cy, _ = windowed_centroids(bins, x, y, fwhm_px)
    bin_snr = stack_snr[:, None] * np.sqrt(bin_counts / n)[None, :]
    # Registration jitter and pixelation floor the error of bright stars' centroids.
    floor = np.hypot(jitter_px / np.sqrt(bin_counts), 0.01)[None, :]
    sigma = np.hypot(np.sqrt(2.0) * psf / np.maximum(bin_snr, 1.0), floor)
    tt = np.broadcast_to(bin_t - t_ref, cx.shape)
    ax, bx, _, sbx, chix = _weighted_line(tt, cx, sigma)
    ay, by, _, sby, chiy = _weighted_line(tt, cy, sigma)
    dof = max(1, 2 * (len(bin_t) - 2))
    # Calibrate on the stars: most sources do not move, so the median reduced chi2 of the
    # line fits (about 1 when the errors are right) rescales every error.
    chi_red = (chix + chiy) / dof
    scale = float(np.sqrt(max(1.0, np.nanmedian(chi_red) / 0.93)))
    zx, zy = bx / (sbx * scale), by / (sby * scale)
    z = np.hypot(zx, zy)
    span = float(bin_t.max() - bin_t.min())
    motion = np.hypot(bx, by) * span
    linear = chi_red / scale**2 < 3.0
    good = (z > z_threshold) & (motion >= min_motion_px) & (np.hypot(bx, by) <= v_max) & linear
    out = np.zeros(int(good.sum()), TRACK_DTYPE)
    out["x"], out["y"], out["vx"], out["vy"] = ax[good], ay[good], bx[good], by[good]
    out["score"], out["half1"], out["half2"] = stack_snr[good], z[good], z[good]
    out["n"] = int(n)
    out["source"] = "slow"
    info.update(error_scale=scale, candidates=int(good.sum()))
    return out, info
