"""Positions of a mover: sub-stack centroids along the motion, per-frame positions with
uncertainties, RA/Dec through the WCS, and a great-circle constant-rate fit as a check.

Single frames of a faint mover give poor centroids; the two half-sequence sub-stacks along
the fitted motion give two good ones, and the straight line through them gives every
frame's position (Shao et al. 2014: synthetic tracking's astrometry comes from the stacks).
For a Gaussian PSF of sigma s the centroid error is sqrt(2) s / SNR per axis.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from datas_pipeline.movers.sequence import gaussian_sigma
from datas_pipeline.movers.slow import windowed_centroids

StampReader = Callable[[int, int, int, int], np.ndarray]  # (frame, row0, col0, size) -> stamp (ADU)


@dataclass(frozen=True)
class TrackFit:
    """A straight constant-rate track in pixel coordinates at reference time ``t_ref`` (frame units).

    ``sigma_x1`` etc. are the 1-sigma errors (px) of the two sub-stack positions at times
    ``t1`` and ``t2``; ``snr1``, ``snr2`` the sub-stack SNRs.
    """

    x: float
    y: float
    vx: float
    vy: float
    t_ref: float
    t1: float
    t2: float
    sigma1: float
    sigma2: float
    snr1: float
    snr2: float
    flux_adu: float = float("nan")

    def position(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel position (0-based) at times ``t`` (frame units)."""
        dt = np.asarray(t, float) - self.t_ref
        return self.x + self.vx * dt, self.y + self.vy * dt

    def sigma(self, t: np.ndarray) -> np.ndarray:
        """1-sigma position error per axis (px) along the line through the two sub-stack points."""
        a = (np.asarray(t, float) - self.t1) / (self.t2 - self.t1)
        return np.sqrt(((1 - a) * self.sigma1) ** 2 + (a * self.sigma2) ** 2)


def substack(read: StampReader, frames: np.ndarray, t: np.ndarray, x: float, y: float, vx: float, vy: float,
             t_ref: float, half: int, shape: tuple[int, int],
             bounds: tuple[int, int, int, int] | None = None) -> tuple[np.ndarray, float, float]:
    """Median of stamps shifted so the predicted mover sits at the stamp centre.

    Returns the stack (size ``2 half + 1``) and the mean predicted position (x, y) it is centred
    on; stamps reaching outside ``bounds`` (row0, col0, row1, col1; default the frame) are skipped.
    """
    size = 2 * half + 1
    stamps = []
    px_all, py_all = [], []
    row0, col0, row1, col1 = bounds if bounds is not None else (0, 0, *shape)
    for k in frames:
        px, py = x + vx * (t[k] - t_ref), y + vy * (t[k] - t_ref)
        ix, iy = int(np.floor(px)), int(np.floor(py))
        if ix - half - 1 < col0 or iy - half - 1 < row0 or ix + half + 2 >= col1 or iy + half + 2 >= row1:
            continue
        stamp = read(int(k), iy - half - 1, ix - half - 1, size + 2)
        shifted = ndimage.shift(stamp, (-(py - iy), -(px - ix)), order=1, mode="nearest")
        stamps.append(shifted[1:-1, 1:-1])
        px_all.append(px)
        py_all.append(py)
    if not stamps:
        return np.zeros((size, size)), np.nan, np.nan
    # The median: a star residual, cosmic ray or trail in one frame does not move the centroid.
    return np.median(stamps, axis=0), float(np.mean(px_all)), float(np.mean(py_all))


def fit_track(read: StampReader, t: np.ndarray, used: np.ndarray, x: float, y: float, vx: float, vy: float,
              t_ref: float, fwhm_px: float, sigma_adu: np.ndarray, shape: tuple[int, int],
              iterations: int = 3, bounds: tuple[int, int, int, int] | None = None) -> TrackFit:
    """Refine a trajectory by centroiding its first- and second-half sub-stacks.

    ``read(frame, row0, col0, size)`` returns the residual (sky- and star-subtracted) stamp
    of a frame in ADU; ``sigma_adu`` the frames' pixel noise.
    """
    frames = np.flatnonzero(used)
    halves = (frames[: frames.size // 2], frames[frames.size // 2:])
    half = int(np.ceil(2.5 * fwhm_px))
    psf = gaussian_sigma(fwhm_px)
    state = np.array([x, y, vx, vy], float)
    points, sigmas, snrs, times, fluxes = [], [], [], [], []
    for _ in range(iterations):
        points, sigmas, snrs, times, fluxes = [], [], [], [], []
        for part in halves:
            stack, cx0, cy0 = substack(read, part, t, *state, t_ref, half, shape, bounds)
            if not np.isfinite(cx0):
                return TrackFit(*map(float, state), t_ref, t_ref - 1, t_ref + 1, np.inf, np.inf, 0.0, 0.0)
            cx, cy, flux = windowed_centroids(stack[None], np.array([half]), np.array([half]), fwhm_px)
            # The median of n frames is noisier than their mean by sqrt(pi/2).
            noise = 1.2533 * float(np.median(sigma_adu[part])) / np.sqrt(part.size)
            # Window-weighted flux of a Gaussian window on white noise: sigma * sqrt(pi) * s.
            snr = float(flux[0, 0]) / (noise * np.sqrt(np.pi) * psf)
            points.append((cx0 + cx[0, 0] - half, cy0 + cy[0, 0] - half))
            sigmas.append(np.sqrt(2.0) * psf / max(snr, 1.0))
            snrs.append(snr)
            fluxes.append(2.0 * float(flux[0, 0]))  # a PSF-sized window holds half a Gaussian's flux
            times.append(float(np.mean(t[part])))
        (x1, y1), (x2, y2) = points
        t1, t2 = times
        vx_new, vy_new = (x2 - x1) / (t2 - t1), (y2 - y1) / (t2 - t1)
        a = (t_ref - t1) / (t2 - t1)
        state = np.array([x1 + a * (x2 - x1), y1 + a * (y2 - y1), vx_new, vy_new])
    return TrackFit(*map(float, state), t_ref, times[0], times[1], sigmas[0], sigmas[1], snrs[0], snrs[1],
                    float(np.mean(fluxes)))


def fit_track_in_scene(read_light: StampReader, t: np.ndarray, used: np.ndarray, x: float, y: float, vx: float,
                       vy: float, t_ref: float, fwhm_px: float, sigma_adu: np.ndarray, shape: tuple[int, int],
                       iterations: int = 3) -> TrackFit:
    """Refine a slow mover's trajectory with the static sky re-estimated without it.

    A mover that moves only a few PSF widths leaves part of itself in any median of the
    frames, and its residual centroid is pulled away from that imprint. Here the local sky
    under the track is the median of the frames *minus the fitted mover*, and the mover is
    fitted again on frames minus that sky (scene modelling, a few rounds).
    ``read_light(frame, row0, col0, size)`` gives the sky-subtracted frame (stars included).
    """
    frames = np.flatnonzero(used)
    ny, nx = shape
    px, py = x + vx * (t[frames] - t_ref), y + vy * (t[frames] - t_ref)
    margin = int(np.ceil(4 * fwhm_px)) + 2
    r0, c0 = max(0, int(np.floor(py.min())) - margin), max(0, int(np.floor(px.min())) - margin)
    r1, c1 = min(ny, int(np.ceil(py.max())) + margin + 1), min(nx, int(np.ceil(px.max())) + margin + 1)
    size = max(r1 - r0, c1 - c0)
    r0, c0 = max(0, min(r0, ny - size)), max(0, min(c0, nx - size))
    light = {int(k): read_light(int(k), r0, c0, size) for k in frames}
    sky = np.median([light[int(k)] for k in frames], axis=0)
    fit = TrackFit(x, y, vx, vy, t_ref, t_ref - 1, t_ref + 1, np.inf, np.inf, 0.0, 0.0)
    for _ in range(iterations):
        def read(k, rr, cc, n, _sky=sky):
            return (light[k] - _sky)[rr - r0:rr - r0 + n, cc - c0:cc - c0 + n]

        fit = fit_track(read, t, used, fit.x, fit.y, fit.vx, fit.vy, t_ref, fwhm_px, sigma_adu, shape,
                        iterations=2, bounds=(r0, c0, r0 + sky.shape[0], c0 + sky.shape[1]))
        if not np.isfinite(fit.flux_adu) or fit.flux_adu <= 0:
            break
        # The mover's own image (its stack along the motion) is the model subtracted from
        # each frame: no PSF shape to assume, so no wings left behind in the sky.
        half = int(np.ceil(3 * fwhm_px))
        stamp, _, _ = substack(read, frames, t, fit.x, fit.y, fit.vx, fit.vy, t_ref, half, shape,
                               (r0, c0, r0 + sky.shape[0], c0 + sky.shape[1]))
        stamp = np.clip(stamp, 0, None)
        without = []
        for k in frames:
            mx, my = fit.position(t[k])
            ix, iy = int(np.floor(mx)), int(np.floor(my))
            model = np.zeros_like(sky)
            placed = ndimage.shift(np.pad(stamp, 1), (my - iy, mx - ix), order=1)
            rr, cc = iy - half - 1 - r0, ix - half - 1 - c0
            a0, b0 = max(0, rr), max(0, cc)
            a1, b1 = min(model.shape[0], rr + placed.shape[0]), min(model.shape[1], cc + placed.shape[1])
            if a1 > a0 and b1 > b0:
                model[a0:a1, b0:b1] = placed[a0 - rr:a1 - rr, b0 - cc:b1 - cc]
            without.append(light[int(k)] - model)
        sky = np.median(without, axis=0)
    return fit


def pixel_to_sky(wcs, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """RA, Dec (deg) of 0-based pixel positions through an astropy WCS (SIP included)."""
    ra, dec = wcs.all_pix2world(np.asarray(x, float), np.asarray(y, float), 0)
    return np.asarray(ra, float) % 360.0, np.asarray(dec, float)


def pixel_scale_arcsec(wcs) -> float:
    """Mean pixel scale (arcsec/px) of a celestial WCS."""
    from astropy.wcs.utils import proj_plane_pixel_scales

    return float(np.mean(proj_plane_pixel_scales(wcs.celestial)) * 3600.0)


def _unit(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    return np.column_stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)])


def great_circle_fit(ra: np.ndarray, dec: np.ndarray, seconds: np.ndarray) -> dict:
    """Fit a great circle travelled at constant angular rate; residuals in arcsec.

    Returns ``rate_arcsec_per_min``, ``position_angle_deg`` (east of north, of the motion),
    ``cross_rms_arcsec`` (off the circle), ``along_rms_arcsec`` (off the constant rate) and
    the per-point residuals.
    """
    u = _unit(ra, dec)
    if len(u) < 3:
        return {"points": int(len(u))}
    normal = np.linalg.svd(u)[2][-1]
    cross = np.degrees(np.arcsin(np.clip(u @ normal, -1, 1))) * 3600.0
    ref = u[0] - (u[0] @ normal) * normal
    ref /= np.linalg.norm(ref)
    ortho = np.cross(normal, ref)
    theta = np.unwrap(np.arctan2(u @ ortho, u @ ref))
    slope, intercept = np.polyfit(seconds, theta, 1)
    along = np.degrees(theta - (intercept + slope * seconds)) * 3600.0
    # Position angle of the motion at the first point: local north and east unit vectors.
    r0, d0 = np.radians(ra[0]), np.radians(dec[0])
    east = np.array([-np.sin(r0), np.cos(r0), 0.0])
    north = np.array([-np.sin(d0) * np.cos(r0), -np.sin(d0) * np.sin(r0), np.cos(d0)])
    direction = np.sign(slope) * ortho
    pa = float(np.degrees(np.arctan2(direction @ east, direction @ north)) % 360.0)
    return {"points": int(len(u)), "rate_arcsec_per_min": float(abs(np.degrees(slope)) * 3600.0 * 60.0),
            "position_angle_deg": pa, "cross_rms_arcsec": float(np.sqrt(np.mean(cross**2))),
            "along_rms_arcsec": float(np.sqrt(np.mean(along**2))),
            "cross_residuals_arcsec": cross.tolist(), "along_residuals_arcsec": along.tolist()}
