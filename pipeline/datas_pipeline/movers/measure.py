"""From a confirmed trajectory to a reported track: refined fit, per-frame positions, sky coordinates."""
from __future__ import annotations

import numpy as np

from datas_pipeline.movers.astrometry import (
    StampReader,
    TrackFit,
    fit_track,
    fit_track_in_scene,
    great_circle_fit,
    pixel_scale_arcsec,
    pixel_to_sky,
)
from datas_pipeline.movers.search import Track
from datas_pipeline.movers.sequence import SequenceTimes, gaussian_sigma
from datas_pipeline.movers.tracking import sample_maps

# Tracks moving less than this many FWHM over the sequence are fitted with the sky
# re-estimated without them (a median of the frames keeps part of a slow mover).
SCENE_MOTION_FWHM = 6.0


def measure_track(row: np.void, read: StampReader, cube: np.ndarray, t: np.ndarray, used: np.ndarray,
                  t_ref: float, fwhm_px: float, sigmas: np.ndarray, shape: tuple[int, int],
                  times: SequenceTimes, names: list[str], wcs=None, bins: np.ndarray | None = None,
                  bin_t: np.ndarray | None = None, read_light: StampReader | None = None) -> Track:
    """Positions (0-based px, and RA/Dec with a WCS) of a trajectory in every used frame.

    Residual-based tracks are refined on their half-sequence sub-stacks (for slow ones, with
    the local sky re-estimated without the mover: ``read_light`` gives sky-subtracted
    stamps); tracks of the drifting-centroid search (``bins`` given) keep their drift fit,
    with errors from the stack SNR.
    """
    psf = gaussian_sigma(fwhm_px)
    fit = None
    frames = np.flatnonzero(used)
    motion = float(np.hypot(row["vx"], row["vy"]) * np.ptp(t[frames]))
    start = (float(row["x"]), float(row["y"]), float(row["vx"]), float(row["vy"]))
    if bins is None and read_light is not None and motion < SCENE_MOTION_FWHM * fwhm_px:
        fit = fit_track_in_scene(read_light, t, used, *start, t_ref, fwhm_px, sigmas, shape, iterations=8)
    elif bins is None:
        fit = fit_track(read, t, used, *start, t_ref, fwhm_px, sigmas, shape)
    if fit is not None:
        moved = np.hypot(fit.x - row["x"], fit.y - row["y"])
        if not np.isfinite(fit.sigma1) or min(fit.snr1, fit.snr2) < 2.0 or moved > 2.0 * fwhm_px:
            fit = None  # the sub-stacks cannot improve on the search's own estimate
    if fit is None:
        half_t = (float(np.mean(t[frames[: frames.size // 2]])), float(np.mean(t[frames[frames.size // 2:]])))
        per_half = max(float(row["score"]) / np.sqrt(2.0), 1.0)
        sigma = np.sqrt(2.0) * psf / per_half
        fit = TrackFit(float(row["x"]), float(row["y"]), float(row["vx"]), float(row["vy"]), t_ref,
                       half_t[0], half_t[1], sigma, sigma, per_half, per_half)
    x, y = fit.position(t[frames])
    sig = fit.sigma(t[frames])
    values, _ = sample_maps(cube, t - t_ref, used, np.array([fit.x]), np.array([fit.y]), np.array([fit.vx]),
                            np.array([fit.vy]))
    per_frame = values[0]
    ny, nx = shape
    positions = []
    for j, k in enumerate(frames):
        if not (0 <= x[j] <= nx - 1 and 0 <= y[j] <= ny - 1):
            continue
        positions.append({"file": names[k], "frame": int(k), "time": times.utc[k], "mjd": _num(times.mjd[k]),
                          "seconds": float(times.seconds[k]), "x": float(x[j]), "y": float(y[j]),
                          "sigma_px": float(sig[j]), "snr": float(per_frame[j])})
    track = Track("mover", str(row["source"]), fit.x, fit.y, fit.vx, fit.vy, float(row["score"]),
                  (float(row["half1"]), float(row["half2"])), positions)
    track.fit = {"t1": fit.t1, "t2": fit.t2, "sigma1_px": fit.sigma1, "sigma2_px": fit.sigma2,
                 "substack_snr": [fit.snr1, fit.snr2], "flux_adu": _num(fit.flux_adu)}
    if np.isfinite(fit.flux_adu) and fit.flux_adu > 0:
        mag = -2.5 * np.log10(fit.flux_adu)
        for p in positions:
            p["mag_inst"] = float(mag)
    if wcs is not None and positions:
        px = np.array([p["x"] for p in positions])
        py = np.array([p["y"] for p in positions])
        ra, dec = pixel_to_sky(wcs, px, py)
        scale = pixel_scale_arcsec(wcs)
        for p, r, d in zip(positions, ra, dec, strict=True):
            p.update(ra=float(r), dec=float(d), sigma_arcsec=p["sigma_px"] * scale)
        if times.source != "order":
            track.fit["great_circle"] = great_circle_fit(ra, dec, np.array([p["seconds"] for p in positions]))
        track.fit["pixel_scale_arcsec"] = scale
    return track


def _num(value: float) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None
