"""Seeded aligned sequences with moving objects of known truth, for tests, benchmarks and auto-tune.

The static sky (stars of :mod:`datas_pipeline.synthetic.fields`) is rendered once and each frame adds
its own noise, a little registration jitter, fixed hot pixels, cosmic rays, an optional
satellite trail and the movers. A mover's per-frame SNR is the PSF-fit SNR of one frame,
``flux * sqrt(sum(psf^2)) / sigma_pixel``, so "SNR 3" means what it says whatever the PSF.
Coordinates are 0-based numpy order; times are mid-exposure, seconds from the first frame.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from astropy.io import fits
from scipy import ndimage

from datas_pipeline.synthetic.fields import STAR_DTYPE, expose, make_wcs, random_stars, render_stars
from datas_pipeline.synthetic.sequence import inject_cosmic_rays, inject_hot_pixels, inject_trail

MOVER_DTYPE = [("x", "f8"), ("y", "f8"), ("vx", "f8"), ("vy", "f8"), ("snr", "f8"), ("flux", "f8")]


@dataclass
class MoverSequence:
    """Frames (ADU, float32) and their truth: movers (position at frame 0, px/frame), trails, times."""

    frames: list[np.ndarray]
    seconds: np.ndarray
    headers: list[fits.Header]
    movers: np.ndarray
    trail_frames: tuple[int, ...]
    trail_masks: dict[int, np.ndarray] = field(default_factory=dict)
    wcs: object | None = None
    fwhm: float = 3.0
    sigma_adu: float = 15.0

    def mover_position(self, index: int, frame: float) -> tuple[float, float]:
        """True position (px) of mover ``index`` at frame ``frame``."""
        m = self.movers[index]
        return float(m["x"] + m["vx"] * frame), float(m["y"] + m["vy"] * frame)


def psf_sharpness(fwhm: float, beta: float = 3.0) -> float:
    """sum(p^2) of the unit-flux Moffat PSF as rendered (1/px^2): SNR = flux sqrt(this) / sigma."""
    stars = np.zeros(1, STAR_DTYPE)
    stars["x"], stars["y"], stars["flux"] = 20.3, 20.6, 1.0
    image = render_stars((41, 41), stars, fwhm=fwhm, beta=beta)
    return float((image**2).sum())


def flux_for_snr(snr: float, sigma_adu: float, fwhm: float, gain: float = 1.0) -> float:
    """Flux (e-) of a point source with the given per-frame PSF-fit SNR on noise ``sigma_adu``."""
    return float(snr * sigma_adu * gain / np.sqrt(psf_sharpness(fwhm)))


def random_movers(n: int, shape: tuple[int, int], n_frames: int, rng: np.random.Generator,
                  rates: tuple[float, float] | list[float], snrs: tuple[float, float] | list[float],
                  margin: float = 20.0) -> np.ndarray:
    """Movers whose whole track stays ``margin`` px inside the frame where the rate allows.

    ``rates`` and ``snrs`` are (low, high) ranges (log-uniform) or explicit per-mover lists.
    """
    ny, nx = shape
    out = np.zeros(n, MOVER_DTYPE)

    def draw(spec):
        if isinstance(spec, list | np.ndarray):
            return np.asarray(spec, float)[:n]
        lo, hi = spec
        return np.exp(rng.uniform(np.log(lo), np.log(hi), n))

    rate, snr = draw(rates), draw(snrs)
    angle = rng.uniform(0, 2 * np.pi, n)
    out["vx"], out["vy"], out["snr"] = rate * np.cos(angle), rate * np.sin(angle), snr
    for i in range(n):
        span_x, span_y = out["vx"][i] * (n_frames - 1), out["vy"][i] * (n_frames - 1)
        lo_x, hi_x = margin - min(0, span_x), nx - 1 - margin - max(0, span_x)
        lo_y, hi_y = margin - min(0, span_y), ny - 1 - margin - max(0, span_y)
        # A track longer than the frame starts so its middle falls inside the frame.
        out["x"][i] = rng.uniform(lo_x, hi_x) if hi_x > lo_x else rng.uniform(margin, nx - 1 - margin) - span_x / 2
        out["y"][i] = rng.uniform(lo_y, hi_y) if hi_y > lo_y else rng.uniform(margin, ny - 1 - margin) - span_y / 2
    return out


def iter_mover_frames(
    n_frames: int = 24, shape: tuple[int, int] = (256, 256), movers: np.ndarray | None = None, seed: int = 0,
    n_stars: int = 150, fwhm: float = 3.0, sky: float = 200.0, read_noise: float = 5.0, gain: float = 1.0,
    star_flux: tuple[float, float] = (1e3, 2e5), jitter_px: float = 0.05, hot_pixel_fraction: float = 2e-4,
    cosmic_rays_per_frame: int = 5, trail_frames: tuple[int, ...] = (), cadence_s: float = 60.0,
    exposure_s: float = 50.0, start: datetime = datetime(2026, 12, 6, 1, 0, 0, tzinfo=UTC),
    wcs_center: tuple[float, float] | None = (45.0, 20.0), scale_arcsec: float = 1.5,
):
    """Yield ``(image, header, trail_mask or None)`` frame by frame (see :func:`make_mover_sequence`).

    The first item yielded is the truth: ``(movers with flux filled in, wcs, sigma_adu)``;
    a long sequence can be written to disk without holding it in memory.
    """
    rng = np.random.default_rng(seed)
    ny, nx = shape
    stars = random_stars(shape, int(round(n_stars * ny * nx / 256**2)), rng, flux_range=star_flux)
    static = render_stars(shape, stars, fwhm=fwhm)
    sigma_adu = float(np.sqrt(sky + read_noise**2) / gain)
    movers = np.zeros(0, MOVER_DTYPE) if movers is None else movers.copy()
    movers["flux"] = [flux_for_snr(s, sigma_adu, fwhm, gain) for s in movers["snr"]]
    n_hot = int(round(hot_pixel_fraction * ny * nx))
    hot = np.column_stack([rng.integers(0, ny, n_hot), rng.integers(0, nx, n_hot)])
    wcs = make_wcs(*wcs_center, scale_arcsec, shape) if wcs_center else None
    yield movers, wcs, sigma_adu
    for k in range(n_frames):
        sky_part = static
        if jitter_px > 0:
            sky_part = ndimage.shift(static, rng.normal(0, jitter_px, 2), order=1, mode="nearest")
        electrons = sky_part.copy()
        if len(movers):
            at = np.zeros(len(movers), STAR_DTYPE)
            at["x"], at["y"], at["flux"] = movers["x"] + movers["vx"] * k, movers["y"] + movers["vy"] * k, movers["flux"]
            visible = (at["x"] > -10) & (at["x"] < nx + 10) & (at["y"] > -10) & (at["y"] < ny + 10)
            if visible.any():
                electrons += render_stars(shape, at[visible], fwhm=fwhm)
        image = expose(electrons, rng, sky=sky, read_noise=read_noise, gain=gain)
        inject_hot_pixels(image, hot, 3000.0)
        if cosmic_rays_per_frame:
            inject_cosmic_rays(image, cosmic_rays_per_frame, rng)
        trail = inject_trail(image, rng, amplitude_adu=300.0, width_px=2.0) if k in trail_frames else None
        begin = start + timedelta(seconds=k * cadence_s)
        header = fits.Header({"DATE-OBS": begin.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3], "EXPTIME": exposure_s})
        if wcs is not None:
            header.update(wcs.to_header())
        yield image, header, trail


def make_mover_sequence(n_frames: int = 24, shape: tuple[int, int] = (256, 256), movers: np.ndarray | None = None,
                        seed: int = 0, trail_frames: tuple[int, ...] = (), cadence_s: float = 60.0,
                        fwhm: float = 3.0, **options) -> MoverSequence:
    """Render an aligned sequence with movers, stars, hot pixels, cosmic rays and trails.

    ``movers`` (``MOVER_DTYPE``, the ``flux`` column filled in here from ``snr``) gives each
    mover's position at frame 0 and its rate (px/frame); their PSF is the stars'. Other
    options (star density, sky, noise, jitter, hot pixels, cosmic rays, WCS) are those of
    :func:`iter_mover_frames`.
    """
    frames = iter_mover_frames(n_frames, shape, movers, seed, fwhm=fwhm, trail_frames=trail_frames,
                               cadence_s=cadence_s, **options)
    truth, wcs, sigma_adu = next(frames)
    images, headers, trails = [], [], {}
    for k, (image, header, trail) in enumerate(frames):
        images.append(image)
        headers.append(header)
        if trail is not None:
            trails[k] = trail
    return MoverSequence(images, np.arange(n_frames) * cadence_s, headers, truth, tuple(trail_frames), trails,
                         wcs, fwhm, sigma_adu)


def injected(frames: list[np.ndarray], movers: np.ndarray, fwhm: float, sigma_adu: float,
             gain: float = 1.0, t: np.ndarray | None = None) -> list[np.ndarray]:
    """Copies of ``frames`` with ``movers`` (per-frame SNR on noise ``sigma_adu``) added, for injection-recovery.

    ``t`` gives the frame times in frame units (default 0, 1, 2, ...); the injected light
    carries its own shot noise approximately (Gaussian of the flux).
    """
    t = np.arange(len(frames), dtype=float) if t is None else np.asarray(t, float)
    out = []
    rng = np.random.default_rng(12345)
    flux = np.array([flux_for_snr(s, sigma_adu, fwhm, gain) for s in movers["snr"]])
    for k, frame in enumerate(frames):
        at = np.zeros(len(movers), STAR_DTYPE)
        at["x"], at["y"], at["flux"] = movers["x"] + movers["vx"] * t[k], movers["y"] + movers["vy"] * t[k], flux
        light = render_stars(frame.shape, at, fwhm=fwhm) / gain
        light += rng.normal(0, 1, light.shape) * np.sqrt(np.clip(light, 0, None) / gain)
        out.append((np.asarray(frame, np.float32) + light).astype(np.float32))
    return out
