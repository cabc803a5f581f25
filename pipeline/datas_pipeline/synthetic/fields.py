"""Seeded synthetic star fields with known truth, for tests, benchmarks and simulators.

Every generator takes a ``numpy.random.Generator`` so a test states its seed once. Pixel
coordinates are 0-based numpy order (``x`` column, ``y`` row), fluxes in electrons before
gain, images returned in ADU.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS

STAR_DTYPE = [("x", "f8"), ("y", "f8"), ("flux", "f8")]


def random_stars(
    shape: tuple[int, int],
    n_stars: int,
    rng: np.random.Generator,
    flux_range: tuple[float, float] = (2e3, 2e5),
    margin: float = 0.0,
    power_law_index: float = 1.5,
) -> np.ndarray:
    """Uniformly placed stars with a power-law flux distribution (many faint, few bright).

    ``flux_range`` is in electrons; ``margin`` keeps stars that many pixels from the edges.
    """
    ny, nx = shape
    stars = np.zeros(n_stars, dtype=STAR_DTYPE)
    stars["x"] = rng.uniform(margin, nx - 1 - margin, n_stars)
    stars["y"] = rng.uniform(margin, ny - 1 - margin, n_stars)
    lo, hi = flux_range
    u = rng.uniform(size=n_stars)
    k = 1.0 - power_law_index
    stars["flux"] = (lo**k + u * (hi**k - lo**k)) ** (1.0 / k)
    return stars


def moffat_alpha(fwhm: float, beta: float) -> float:
    """Moffat core width alpha (px) for a given FWHM (px) and beta."""
    return fwhm / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))


def render_stars(
    shape: tuple[int, int],
    stars: np.ndarray,
    fwhm: float = 3.0,
    beta: float = 3.0,
    elongation: float = 1.0,
    angle_deg: float = 0.0,
    oversample: int = 3,
    stamp_fwhm: float = 6.0,
    trail: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """Render normalised Moffat stars (total flux ``stars['flux']``) into an empty image.

    ``elongation`` stretches the profile along ``angle_deg`` (from +x towards +y), as coma
    or astigmatism does. ``trail`` = (dx, dy) px smears each star uniformly along that
    vector during the exposure (a drifting mount), centred on the star's position. Each
    pixel is integrated on an ``oversample`` x ``oversample`` sub-grid so centroids stay
    unbiased at sub-pixel level.
    """
    length = float(np.hypot(*trail))
    if length > 0:
        # A trail is the same star at many positions along the drift, each with its share.
        steps = int(np.ceil(4 * length / max(fwhm, 0.5))) + 1
        offsets_t = np.linspace(-0.5, 0.5, steps)
        smeared = np.repeat(stars, steps)
        smeared["x"] += np.tile(offsets_t * trail[0], len(stars))
        smeared["y"] += np.tile(offsets_t * trail[1], len(stars))
        smeared["flux"] /= steps
        return render_stars(shape, smeared, fwhm, beta, elongation, angle_deg, oversample, stamp_fwhm)
    ny, nx = shape
    image = np.zeros(shape, dtype=np.float64)
    alpha = moffat_alpha(fwhm, beta)
    half = int(np.ceil(stamp_fwhm * fwhm * max(elongation, 1.0)))
    offsets = (np.arange(oversample) + 0.5) / oversample - 0.5
    cos_t, sin_t = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))
    # The analytic Moffat normalisation; a stamp 6 FWHM wide keeps the truncated wings below
    # 0.2 % of the flux for beta >= 3.
    for x0, y0, flux in zip(stars["x"], stars["y"], stars["flux"], strict=True):
        ix, iy = int(round(x0)), int(round(y0))
        xs = np.arange(max(ix - half, 0), min(ix + half + 1, nx))
        ys = np.arange(max(iy - half, 0), min(iy + half + 1, ny))
        if xs.size == 0 or ys.size == 0:
            continue
        gx = (xs[None, :, None, None] + offsets[None, None, None, :]) - x0
        gy = (ys[:, None, None, None] + offsets[None, None, :, None]) - y0
        u = (gx * cos_t + gy * sin_t) / elongation
        v = -gx * sin_t + gy * cos_t
        profile = (1.0 + (u * u + v * v) / alpha**2) ** (-beta)
        stamp = profile.mean(axis=(2, 3))
        norm = np.pi * alpha**2 * elongation / (beta - 1.0)
        image[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += flux * stamp / norm
    return image


def expose(
    electrons: np.ndarray,
    rng: np.random.Generator,
    sky: float = 200.0,
    read_noise: float = 5.0,
    gain: float = 1.0,
    bias: float = 0.0,
) -> np.ndarray:
    """Turn an ideal image in electrons into a noisy frame in ADU (float32).

    ``sky`` is electrons per pixel, ``read_noise`` electrons rms, ``gain`` e-/ADU,
    ``bias`` ADU. Shot noise is Poisson on signal plus sky.
    """
    signal = rng.poisson(np.clip(electrons + sky, 0, None)).astype(np.float64)
    signal += rng.normal(0.0, read_noise, electrons.shape)
    return (signal / gain + bias).astype(np.float32)


def transform_points(
    x: np.ndarray,
    y: np.ndarray,
    dx: float = 0.0,
    dy: float = 0.0,
    rotation_deg: float = 0.0,
    scale: float = 1.0,
    center: tuple[float, float] = (0.0, 0.0),
    flip_x: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Apply a similarity transform (optionally mirrored) about ``center`` = (x, y), then shift.

    This is the truth convention for registration tests: a point (x, y) of the reference
    frame lands at the returned (x', y') in the moved frame.
    """
    cx, cy = center
    u, v = np.asarray(x, float) - cx, np.asarray(y, float) - cy
    if flip_x:
        u = -u
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    return scale * (c * u - s * v) + cx + dx, scale * (s * u + c * v) + cy + dy


def star_field(
    shape: tuple[int, int] = (512, 512),
    n_stars: int = 200,
    seed: int = 0,
    fwhm: float = 3.0,
    sky: float = 200.0,
    read_noise: float = 5.0,
    gain: float = 1.0,
    flux_range: tuple[float, float] = (2e3, 2e5),
) -> tuple[np.ndarray, np.ndarray]:
    """A complete noisy frame and its star truth, in one call: ``(image_adu, stars)``."""
    rng = np.random.default_rng(seed)
    stars = random_stars(shape, n_stars, rng, flux_range=flux_range, margin=2 * fwhm)
    image = expose(render_stars(shape, stars, fwhm=fwhm), rng, sky=sky, read_noise=read_noise, gain=gain)
    return image, stars


# --- Detector effects: bias, dark, flat, hot pixels, overscan --------------------------------


@dataclass(frozen=True)
class Detector:
    """A simulated camera with known calibration truth.

    ``bias`` (ADU) is the per-pixel bias of the image area, level included; ``dark_current``
    e-/s per pixel (hot pixels included, marked in ``hot_pixels``); ``flat`` the relative
    response (mean 1) with vignetting, dust motes and pixel-to-pixel variation. Raw frames
    carry ``overscan_columns`` extra columns on the right with bias and read noise only.
    """

    bias: np.ndarray
    dark_current: np.ndarray
    flat: np.ndarray
    hot_pixels: np.ndarray
    gain: float = 1.5
    read_noise: float = 5.0
    overscan_columns: int = 0
    saturation: float = 65535.0

    @property
    def shape(self) -> tuple[int, int]:
        return self.bias.shape

    def sections(self) -> dict[str, str]:
        """FITS TRIMSEC/BIASSEC (1-based, inclusive) for raw frames of this detector."""
        ny, nx = self.shape
        if not self.overscan_columns:
            return {}
        return {"TRIMSEC": f"[1:{nx},1:{ny}]", "BIASSEC": f"[{nx + 3}:{nx + self.overscan_columns},1:{ny}]"}


def make_detector(
    shape: tuple[int, int],
    rng: np.random.Generator,
    bias_level: float = 1000.0,
    gain: float = 1.5,
    read_noise: float = 5.0,
    dark_current: float = 0.02,
    hot_fraction: float = 5e-4,
    hot_current: tuple[float, float] = (5.0, 50.0),
    vignetting: float = 0.25,
    dust_motes: int = 3,
    prnu: float = 0.01,
    overscan_columns: int = 0,
) -> Detector:
    """A camera with column-patterned bias, hot pixels and a vignetted, dusty flat.

    ``dark_current`` and ``hot_current`` are e-/s; ``vignetting`` the fractional loss at the
    corners; ``prnu`` the rms pixel response non-uniformity.
    """
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    columns = rng.normal(0.0, 3.0, nx)[None, :]
    bias = bias_level + columns + 2.0 * (yy / ny) + rng.normal(0.0, 0.5, shape)
    current = np.full(shape, dark_current) * rng.gamma(20.0, 1.0 / 20.0, shape)
    hot = rng.random(shape) < hot_fraction
    current[hot] = rng.uniform(*hot_current, hot.sum())
    r2 = ((xx - nx / 2) ** 2 + (yy - ny / 2) ** 2) / ((nx / 2) ** 2 + (ny / 2) ** 2)
    flat = (1.0 - vignetting * r2) * rng.normal(1.0, prnu, shape)
    for _ in range(dust_motes):
        cx, cy = rng.uniform(0.1, 0.9) * nx, rng.uniform(0.1, 0.9) * ny
        radius = rng.uniform(0.03, 0.08) * min(nx, ny)
        ring = np.hypot(xx - cx, yy - cy)
        flat *= 1.0 - 0.08 * np.exp(-0.5 * ((ring - radius) / (0.25 * radius)) ** 2)
    flat /= flat.mean()
    return Detector(bias=bias, dark_current=current, flat=flat, hot_pixels=hot, gain=gain,
                    read_noise=read_noise, overscan_columns=overscan_columns)


def read_out(
    detector: Detector,
    photons: np.ndarray | float,
    exposure_s: float,
    rng: np.random.Generator,
    extra_electrons: np.ndarray | None = None,
    bias_drift: float | None = None,
) -> np.ndarray:
    """A raw frame in ADU (integer-valued float32, overscan appended) as the camera reads it.

    ``photons`` is the light reaching the sensor (e-, before the flat response), 0 for bias
    and dark frames; ``extra_electrons`` (e-) lands after the optics, as cosmic rays do.
    ``bias_drift`` (ADU) offsets the whole frame, image and overscan alike, with a gentle
    ramp along the rows; random when None. Saturates at ``detector.saturation``.
    """
    ny, nx = detector.shape
    signal = detector.flat * np.asarray(photons, dtype=np.float64) + detector.dark_current * exposure_s
    if extra_electrons is not None:
        signal = signal + extra_electrons
    electrons = rng.poisson(np.clip(signal, 0.0, None)).astype(np.float64)
    electrons += rng.normal(0.0, detector.read_noise, detector.shape)
    drift = rng.normal(0.0, 4.0) if bias_drift is None else bias_drift
    rows = drift + 1.5 * np.sin(np.linspace(0.0, np.pi, ny))[:, None]
    image = electrons / detector.gain + detector.bias + rows
    if detector.overscan_columns:
        level = float(np.median(detector.bias))
        overscan = level + rows + rng.normal(0.0, detector.read_noise / detector.gain,
                                             (ny, detector.overscan_columns))
        image = np.hstack([image, overscan])
    return np.clip(np.rint(image), 0.0, detector.saturation).astype(np.float32)


# --- Things that spoil frames: cosmic rays, satellites, clouds --------------------------------


def add_cosmic_rays(
    shape: tuple[int, int], n_hits: int, rng: np.random.Generator,
    energy_range: tuple[float, float] = (800.0, 8000.0),
) -> tuple[np.ndarray, np.ndarray]:
    """Cosmic-ray hits: short sharp tracks (1-6 px) in e-, and the boolean truth mask."""
    image = np.zeros(shape, dtype=np.float64)
    ny, nx = shape
    for _ in range(n_hits):
        length = rng.integers(1, 7)
        angle = rng.uniform(0, np.pi)
        x0, y0 = rng.uniform(3, nx - 9), rng.uniform(3, ny - 9)
        energy = rng.uniform(*energy_range)
        for t in range(length):
            ix = int(x0 + t * np.cos(angle))
            iy = int(y0 + t * np.sin(angle))
            image[iy, ix] += energy
    return image, image > 0


def satellite_streak(
    shape: tuple[int, int], start: tuple[float, float], end: tuple[float, float],
    electrons_per_px: float = 500.0, width_fwhm: float = 2.5,
) -> np.ndarray:
    """A satellite trail (e-) from ``start`` to ``end`` = (x, y): Gaussian across, flat along."""
    ny, nx = shape
    yy, xx = np.mgrid[0:ny, 0:nx]
    (x0, y0), (x1, y1) = start, end
    dx, dy = x1 - x0, y1 - y0
    length = float(np.hypot(dx, dy)) or 1.0
    along = ((xx - x0) * dx + (yy - y0) * dy) / length
    across = ((xx - x0) * dy - (yy - y0) * dx) / length
    sigma = width_fwhm / 2.3548
    inside = (along >= 0) & (along <= length)
    return np.where(inside, electrons_per_px * np.exp(-0.5 * (across / sigma) ** 2), 0.0)


def sky_image(
    shape: tuple[int, int],
    stars: np.ndarray,
    sky: float = 200.0,
    fwhm: float = 3.0,
    beta: float = 3.0,
    transparency: float = 1.0,
    sky_gradient: float = 0.0,
    trail: tuple[float, float] = (0.0, 0.0),
    elongation: float = 1.0,
    angle_deg: float = 0.0,
) -> np.ndarray:
    """The light from the sky reaching the sensor (e-): stars, sky and its gradient.

    ``transparency`` < 1 dims the stars as cloud does (sky brightness in ``sky`` is the
    caller's: clouds over a town brighten it); ``sky_gradient`` is the fractional rise of
    the sky across the frame in x.
    """
    ny, nx = shape
    dimmed = stars.copy()
    dimmed["flux"] = dimmed["flux"] * transparency
    light = render_stars(shape, dimmed, fwhm=fwhm, beta=beta, elongation=elongation, angle_deg=angle_deg,
                         trail=trail)
    ramp = 1.0 + sky_gradient * (np.arange(nx)[None, :] / max(nx - 1, 1) - 0.5)
    return light + sky * ramp


# --- Real skies: catalogue stars at a known WCS ------------------------------------------------


def make_wcs(
    ra_deg: float, dec_deg: float, scale_arcsec: float, shape: tuple[int, int],
    rotation_deg: float = 0.0, flip: bool = False,
) -> WCS:
    """A TAN WCS centred on (RA, Dec) with ``scale_arcsec`` per pixel.

    ``rotation_deg`` turns the image's "up" (+y) from north towards east; without ``flip``
    east is to the left (-x) with north up, as on the sky.
    """
    ny, nx = shape
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [(nx + 1) / 2.0, (ny + 1) / 2.0]
    scale = scale_arcsec / 3600.0
    c, s = np.cos(np.radians(rotation_deg)), np.sin(np.radians(rotation_deg))
    # Columns are the sky directions (east, north) of +x and +y: +y points to position
    # angle rotation_deg, +x 90 degrees from it (west without a flip).
    east = 1.0 if flip else -1.0
    wcs.wcs.cd = scale * np.array([[east * c, s], [-east * s, c]])
    return wcs


def catalog_stars(
    wcs: WCS, shape: tuple[int, int], catalog: np.ndarray, flux_at_mag0: float = 1e9, margin: float = 0.0
) -> np.ndarray:
    """Catalogue stars (``ra``, ``dec``, ``mag``) placed through ``wcs`` onto the frame.

    Returns ``STAR_DTYPE`` rows (0-based x, y; flux in e- = ``flux_at_mag0`` x 10^(-0.4 mag))
    for the stars that land inside the frame (``margin`` px from the edges).
    """
    ny, nx = shape
    x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
    inside = (x >= margin) & (x <= nx - 1 - margin) & (y >= margin) & (y <= ny - 1 - margin)
    stars = np.zeros(int(inside.sum()), dtype=STAR_DTYPE)
    stars["x"], stars["y"] = x[inside], y[inside]
    stars["flux"] = flux_at_mag0 * 10.0 ** (-0.4 * np.asarray(catalog["mag"][inside], dtype=float))
    return stars
