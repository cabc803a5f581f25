"""Source extraction: background, detection, centroids, shapes and fluxes (sep underneath).

The one extraction every stage shares (grading, photometry, registration, live stacking,
the agent). Coordinates are 0-based pixel centres in numpy order: ``x`` is the column,
``y`` the row. Fluxes are in the image's units (ADU unless the caller converted).

With ``noise="global"``, ``aperture_radius=5`` and ``deblend_cont=1.0`` the catalogue is the
one SExtractor 2.x writes with the configuration in shared/data/sep (checked in
tests/pipeline/test_extract.py): same objects, same barycentres, FLUX_APER to 1e-6.
"""
from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass
from typing import Literal

import numpy as np
import sep

from datas_pipeline.detection.bands import (
    SharedFrame,
    band_edges,
    detect_frame,
    measure_in_parts,
    share,
    shared_empty,
)
from datas_pipeline.detection.psf import cut_stamps, fit_moffat
from datas_pipeline.errors import PipelineError
from datas_pipeline.parallel import WorkerPool

# Columns every SourceTable carries, in this order (the shared contract; append only).
SOURCE_COLUMNS = (
    "x", "y", "flux", "flux_err", "peak", "a", "b", "theta", "fwhm", "elongation", "npix", "flag",
    "x_win", "y_win", "flux_auto", "flux_auto_err", "kron_radius", "half_light_radius",
    "eccentricity", "snr", "background", "moffat_beta",
)

# SExtractor's default detection filter (default.conv, a 3x3 "all-ground" kernel).
DEFAULT_FILTER = np.array([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]], dtype=np.float32)

# Flag bits, SExtractor's meanings (1 neighbours, 2 blended, 4 saturated, 8 truncated at the
# edge, 16 aperture data incomplete, ...); these are OR-ed into ``flag``.
FLAG_SATURATED = 4
FLAG_TRUNCATED = 8

# From this size (pixels) on, a caller's worker pool measures the objects in parts; below it
# the pool's messaging costs more than the second core gains.
BAND_MIN_PIXELS = 2048 * 2048

# SExtractor's PHOT_AUTOPARAMS default and its minimum circular radius (px).
KRON_FACTOR = 2.5
KRON_MIN_RADIUS = 3.5


@dataclass(frozen=True)
class Background:
    """A background model: ``level`` and ``rms`` maps, and their global values (image units).

    ``empty`` is True where the frame holds no data (non-finite pixels and, when they are
    more than a stray few, pixels of exactly zero: clipped black sky, the padding of a
    rotated or registered frame); those pixels are left out of the model and the extraction.
    """

    level: np.ndarray
    rms: np.ndarray
    global_level: float
    global_rms: float
    empty: np.ndarray | None = None


# Exactly-zero pixels beyond this fraction of the frame are empty (clipped or padding), not sky.
EMPTY_ZERO_FRACTION = 1e-3


def empty_pixels(data: np.ndarray) -> np.ndarray | None:
    """True where ``data`` holds no measurement: NaN/inf, and exact zeros when they are common.

    A stray zero is a legitimate value of an integer or sky-subtracted frame; thousands of
    them are clipped black sky or padding, where sep's interpolated noise map dips to zero
    or below and would otherwise refuse the whole frame as blank. None when all pixels are data.
    """
    bad = ~np.isfinite(data)
    zeros = data == 0
    if np.count_nonzero(zeros) > EMPTY_ZERO_FRACTION * data.size:
        bad |= zeros
    return bad if bad.any() else None


def as_sep_array(image: np.ndarray) -> np.ndarray:
    """Return ``image`` as a C-contiguous native-endian float32 array, as sep requires."""
    data = np.asarray(image)
    if data.ndim != 2:
        raise PipelineError(f"expected a 2-D image, got an array of shape {data.shape}")
    if data.dtype == np.float32 and data.dtype.isnative and data.flags.c_contiguous:
        return data
    return np.ascontiguousarray(data, dtype=np.float32)


def _as_mask(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.shape != shape:
        raise PipelineError(f"mask shape {mask.shape} does not match the image shape {shape}")
    return mask


def estimate_background(
    image: np.ndarray, mask: np.ndarray | None = None, box_size: int = 64, filter_size: int = 3
) -> Background:
    """Mesh background and noise (SExtractor's algorithm) in image units.

    ``box_size`` is the mesh cell (px) and ``filter_size`` the median filter over cells.
    Non-finite pixels are masked rather than poisoning the mesh.
    """
    data = as_sep_array(image)
    empty = empty_pixels(data)
    mask = _as_mask(mask, data.shape)
    if empty is not None:
        mask = empty if mask is None else (mask | empty)
        data = np.where(empty, 0.0, data).astype(np.float32)
    if mask is not None and mask.all():
        raise PipelineError("the background noise is zero: the frame holds no data (every pixel is masked, "
                            "zero or not a number)")
    box = int(max(8, min(box_size, *data.shape)))
    bkg = sep.Background(data, mask=mask, bw=box, bh=box, fw=filter_size, fh=filter_size)
    global_rms = float(bkg.globalrms)
    rms = bkg.rms()
    # The spline through the mesh can dip to zero or below next to empty regions: there the
    # frame's own global noise stands in (it is the noise of the pixels that hold data).
    low = ~(rms > 0)
    if low.any() and global_rms > 0:
        rms[low] = global_rms
    return Background(bkg.back(), rms, float(bkg.globalback), global_rms, empty)


def extract_sources(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    threshold_sigma: float = 5.0,
    min_area: int = 5,
    background: Background | None = None,
    max_sources: int | None = None,
    *,
    noise: Literal["map", "global"] = "map",
    aperture_radius: float | None = None,
    gain: float | None = None,
    saturation: float | None = None,
    deblend_cont: float = 0.005,
    deblend_nthresh: int = 32,
    clean: bool = True,
    clean_param: float = 1.0,
    filter_kernel: np.ndarray | None = DEFAULT_FILTER,
    kron_params: tuple[float, float] = (KRON_FACTOR, KRON_MIN_RADIUS),
    fit_profiles: bool = True,
    max_profile_fits: int = 200,
    fast: bool = False,
    max_sharpness: float | None = None,
    pool: WorkerPool | None = None,
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
    noise : {"map", "global"}
        Threshold against the local noise map (robust on stacks whose depth varies), or
        against the single global rms as SExtractor does without a weight map.
    aperture_radius : float, optional
        Radius (px) of the circular aperture for ``flux``. By default 1.5 x the median FWHM
        of the well-measured stars (at least 3 px), the radius that maximises signal to
        noise for a Moffat star.
    gain : float, optional
        e-/ADU, for the Poisson term of the flux errors; without it errors are background
        noise only (SExtractor's GAIN = 0).
    saturation : float, optional
        Level (image units, background included) at which pixels saturate; such sources get
        ``FLAG_SATURATED`` and their saturated pixels stay out of the profile fit.
    deblend_cont, deblend_nthresh, clean, clean_param, filter_kernel
        SExtractor's DEBLEND_MINCONT, DEBLEND_NTHRESH, CLEAN, CLEAN_PARAM and FILTER_NAME
        (None: no filter).
    kron_params : (float, float)
        SExtractor's PHOT_AUTOPARAMS: the Kron factor and the minimum circular radius (px).
    fit_profiles : bool
        Fit Moffat profiles for ``fwhm``; False falls back to the half-light estimate.
    max_profile_fits : int
        Fit at most this many of the highest-peak unsaturated sources; the others get their
        half-light diameter scaled by the median fitted ratio (their ``moffat_beta`` is NaN).
    fast : bool
        Detection, barycentres, aperture fluxes and FWHM only: no Kron fluxes, half-light
        radii or windowed centroids (those columns are NaN, ``x_win``/``y_win`` copy x/y).
        About twice as fast on crowded frames.
    max_sharpness : float, optional
        Drop sources sharper than this before measuring them
        (:func:`datas_pipeline.detection.sharpness.point_sharpness`; 1 for a lone hot pixel,
        0.91 for a 1 px FWHM star): raw frames' hot pixels then take no profile fits.
    pool : WorkerPool, optional
        The caller's worker processes (:func:`datas_pipeline.parallel.worker_pool`): on frames
        of at least ``BAND_MIN_PIXELS`` the per-object measurements are split over them
        (:mod:`datas_pipeline.detection.bands`), with bit-for-bit the serial result.

    With ``max_sources``, the costly measurements are made only for the brightest sources
    (by isophotal flux), so asking for the 200 brightest of 20,000 costs little more than
    the detection.

    Returns
    -------
    numpy structured array with the columns in ``SOURCE_COLUMNS``, brightest ``flux`` first:

    - ``x``, ``y``: isophotal barycentre (px, SExtractor's X_IMAGE - 1);
      ``x_win``, ``y_win``: windowed centroid (XWIN_IMAGE - 1), more precise for stars.
    - ``flux``, ``flux_err``: circular aperture flux and error; ``flux_auto`` (Kron),
      whose aperture has semi-axes ``kron_radius`` x (a, b), SExtractor's KRON_RADIUS.
    - ``peak``: highest background-subtracted pixel; ``background``: local sky level.
    - ``a``, ``b``, ``theta``: second-moment ellipse (px, radians from +x);
      ``elongation`` a/b, ``eccentricity`` sqrt(1 - b²/a²).
    - ``fwhm`` (px): from a pixel-integrated Moffat fit, ``moffat_beta`` its index; sources
      not fitted (NaN ``moffat_beta``) get their half-light diameter scaled to the fitted
      stars' PSF. ``half_light_radius`` (px).
    - ``snr``: flux / flux_err; ``npix``: pixels above threshold; ``flag``: bits above.
    """
    if min_area < 1:
        raise PipelineError(f"min_area must be at least 1 pixel, not {min_area}")
    if max_sources is not None and max_sources < 1:
        raise PipelineError(f"max_sources must be at least 1, not {max_sources}")
    data = as_sep_array(image)
    mask = _as_mask(mask, data.shape)
    bkg = background or estimate_background(data, mask=mask)
    empty = bkg.empty if background is None else empty_pixels(data)
    if empty is not None:
        mask = empty if mask is None else (mask | empty)
        data = np.where(empty, 0.0, data).astype(np.float32)
    err = bkg.global_rms if noise == "global" else bkg.rms
    if not bkg.global_rms > 0 or not np.all(np.asarray(err) > 0):
        raise PipelineError("the background noise is zero: the frame is blank or synthetic without noise")
    options = dict(thresh=threshold_sigma, minarea=min_area, filter_kernel=filter_kernel, deblend_cont=deblend_cont,
                   deblend_nthresh=deblend_nthresh, clean=clean, clean_param=clean_param,
                   # With one noise value the matched filter is plain convolution, done ~20 % faster.
                   filter_type="conv" if noise == "global" else "matched")
    parts = pool is not None and data.size >= BAND_MIN_PIXELS
    with ExitStack() as shared:
        if parts:
            # The residual is written straight into shared memory, where the workers read it.
            residual_ref, residual = shared_empty(shared, data.shape, np.float32)
            np.subtract(data, bkg.level, out=residual)
            frame = SharedFrame(residual_ref, share(shared, err), share(shared, mask))
            segmap = shared_empty(shared, data.shape, np.int32) if band_edges(data.shape[0]) is not None else None
            objects, segmap, ids = detect_frame(pool.executor.map, frame, residual, err, mask, options, segmap)
        else:
            residual = data - bkg.level
            frame = None
            objects, segmap, ids = detect_frame(map, SharedFrame(residual, err, mask), residual, err, mask, options)
        table = _measure(objects, ids, residual, segmap, bkg, data, err, mask, pool if parts else None,
                         frame, max_sharpness=max_sharpness, max_sources=max_sources,
                         saturation=saturation, fast=fast, gain=gain, kron_params=kron_params,
                         fit_profiles=fit_profiles, max_profile_fits=max_profile_fits,
                         aperture_radius=aperture_radius)
        del residual, segmap
    return table


def detect_objects(residual: np.ndarray, err, mask: np.ndarray | None, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """sep's detection and deblending on a background-subtracted image: objects and the
    segmentation map (labels 1..n in the objects' order). ``options`` are sep.extract's."""
    try:
        return sep.extract(residual, err=err, mask=mask, segmentation_map=True, **options)
    except Exception as exc:  # sep raises bare Exception for pixel-stack overflows
        raise PipelineError(f"source extraction failed: {exc}") from None


def _measure(objects, ids, residual, segmap, bkg, data, err, mask, pool, frame, *, max_sharpness, max_sources,
             saturation, fast, gain, kron_params, fit_profiles, max_profile_fits, aperture_radius) -> np.ndarray:
    """The catalogue of the detected ``objects`` (see :func:`extract_sources`)."""
    if max_sharpness is not None and len(objects):
        from datas_pipeline.detection.sharpness import point_sharpness

        keep = point_sharpness(residual, objects["x"], objects["y"]) <= max_sharpness
        objects, ids = objects[keep], ids[keep]
    if max_sources and len(objects) > max_sources:
        # Measure a margin beyond the requested number: the final order is by aperture flux.
        keep = np.sort(np.argsort(-objects["flux"], kind="stable")[: max_sources + max(50, max_sources)])
        objects, ids = objects[keep], ids[keep]
    table = np.zeros(len(objects), dtype=[(name, "f8") for name in SOURCE_COLUMNS])
    if len(objects) == 0:
        return table
    x, y = objects["x"], objects["y"]
    a, b, theta = objects["a"], objects["b"], objects["theta"]
    flag = objects["flag"].astype(np.int64)
    table["x"], table["y"] = x, y
    table["peak"] = objects["peak"]
    table["a"], table["b"], table["theta"] = a, b, theta
    table["npix"] = objects["npix"]
    table["elongation"] = a / np.maximum(b, 1e-6)
    table["eccentricity"] = np.sqrt(np.clip(1.0 - (b / np.maximum(a, 1e-6)) ** 2, 0.0, 1.0))
    table["background"] = bkg.level[
        np.clip(np.rint(y).astype(int), 0, data.shape[0] - 1), np.clip(np.rint(x).astype(int), 0, data.shape[1] - 1)
    ]
    if saturation is not None:
        flag |= np.where(objects["peak"] + table["background"] >= saturation, FLAG_SATURATED, 0)

    if fast:
        for name in ("kron_radius", "flux_auto", "flux_auto_err"):
            table[name] = np.nan
        # A Gaussian's half-light radius from its second moments: the size guess for the fits.
        table["half_light_radius"] = 1.1774 * np.sqrt(a * b)
        table["x_win"], table["y_win"] = x, y
    else:
        if pool is not None:
            flag |= measure_in_parts(pool.executor, pool.jobs, table, frame, objects, gain, kron_params)
        else:
            flag |= _shape_measures(table, residual, objects, err, gain, mask, kron_params)

    _measure_fwhm(table, residual, segmap, ids, mask, data, saturation, fit_profiles, max_profile_fits)
    if fast:
        table["half_light_radius"] = np.nan  # it was only the moments' size guess for the fits

    if aperture_radius is None:
        aperture_radius = default_aperture_radius(table)
    flux, flux_err, pflag = sep.sum_circle(
        residual, x, y, aperture_radius, err=err, gain=gain, mask=mask, subpix=5
    )
    flag |= pflag
    table["flux"], table["flux_err"] = flux, flux_err
    table["snr"] = flux / np.where(flux_err > 0, flux_err, np.inf)
    table["flag"] = flag
    table = table[np.argsort(-table["flux"], kind="stable")]
    return table[:max_sources] if max_sources else table


def default_aperture_radius(table: np.ndarray) -> float:
    """1.5 x the median FWHM of clean, well-fitted sources (px), at least 3 px."""
    good = ((table["flag"].astype(np.int64) & FLAG_SATURATED) == 0) & np.isfinite(table["moffat_beta"])
    fwhm = table["fwhm"][good & np.isfinite(table["fwhm"])]
    return float(max(3.0, 1.5 * np.median(fwhm))) if fwhm.size else 5.0


def _shape_measures(table, residual, objects, err, gain, mask, kron_params) -> np.ndarray:
    """Kron flux, then the half-light radius normalised to it, then windowed centroids:
    SExtractor's chain and constants. Returns the flags these measurements raise."""
    x, y = objects["x"], objects["y"]
    a, b, theta = objects["a"], objects["b"], objects["theta"]
    kron, flag = sep.kron_radius(residual, x, y, a, b, theta, 6.0, mask=mask)
    kron = np.nan_to_num(kron)
    auto_flux, auto_err, aflag = _kron_flux(residual, x, y, a, b, theta, kron, err, gain, mask, *kron_params)
    table["kron_radius"] = kron_params[0] * kron
    table["flux_auto"], table["flux_auto_err"] = auto_flux, auto_err
    normflux = np.where(auto_flux > 0, auto_flux, np.maximum(objects["flux"], 1e-30))
    hlr, _ = sep.flux_radius(residual, x, y, 6.0 * np.maximum(a, 0.5), 0.5, normflux=normflux, subpix=5, mask=mask)
    hlr = np.nan_to_num(hlr, nan=0.5)
    table["half_light_radius"] = hlr
    # SExtractor samples the window edge 11x11; sep's exact overlap (subpix 0) is within
    # 5e-4 px of that (2e-5 px for 99 % of a crowded 4096^2 frame) at 40 % of its cost.
    x_win, y_win, _ = sep.winpos(residual, x, y, 2.0 * hlr / 2.35, mask=mask, subpix=0)
    moved = ~np.isfinite(x_win) | ~np.isfinite(y_win) | (np.hypot(x_win - x, y_win - y) > 2.0 * np.maximum(a, 1.0))
    table["x_win"] = np.where(moved, x, x_win)
    table["y_win"] = np.where(moved, y, y_win)
    return flag.astype(np.int64) | aflag.astype(np.int64)


def _kron_flux(residual, x, y, a, b, theta, kron, err, gain, mask, factor, min_radius):
    """FLUX_AUTO: elliptical aperture of ``factor`` Kron radii, or a circle when smaller."""
    use_circle = factor * kron * np.sqrt(a * b) < min_radius
    flux = np.zeros(len(x))
    ferr = np.zeros(len(x))
    flag = np.zeros(len(x), dtype=np.int64)
    ell = ~use_circle
    if ell.any():
        flux[ell], ferr[ell], flag[ell] = sep.sum_ellipse(
            residual, x[ell], y[ell], a[ell], b[ell], theta[ell], factor * kron[ell],
            err=err, gain=gain, mask=mask, subpix=1,
        )
    if use_circle.any():
        flux[use_circle], ferr[use_circle], flag[use_circle] = sep.sum_circle(
            residual, x[use_circle], y[use_circle], min_radius,
            err=err, gain=gain, mask=mask, subpix=1,
        )
    return flux, ferr, flag


def _measure_fwhm(table, residual, segmap, ids, mask, data, saturation, fit_profiles, max_fits):
    """Fill ``fwhm`` and ``moffat_beta`` from Moffat fits of the brightest clean sources."""
    hlr = table["half_light_radius"]
    table["fwhm"] = 2.0 * hlr
    table["moffat_beta"] = np.nan
    if not fit_profiles:
        return
    clean = np.ones(residual.shape, dtype=bool)
    if mask is not None:
        clean &= ~mask
    if saturation is not None:
        clean &= data < saturation
    usable = hlr > 0
    if saturation is not None:
        usable &= table["peak"] + table["background"] < saturation
    candidates = np.flatnonzero(usable)
    candidates = candidates[np.argsort(-table["peak"][candidates], kind="stable")][:max_fits]
    if candidates.size == 0:
        return
    # Stamps of about three half-light radii; a few huge stars are fitted on their core,
    # which is what FWHM describes.
    half = int(np.clip(np.ceil(3.0 * np.median(hlr[candidates])), 4, 15))
    x, y = table["x_win"][candidates], table["y_win"][candidates]
    # Stamps are cut from the integer and boolean maps directly (cut_stamps converts only the
    # stamps): a float64 copy of a whole 4k^2 map cost more than the fits.
    seg, _, _ = cut_stamps(segmap, x, y, half, fill=-1.0)
    ok, _, _ = cut_stamps(clean, x, y, half, fill=0.0)
    own = ids[candidates].astype(np.float64)
    # Each star is fitted on sky pixels and its own pixels, never on its neighbours'.
    weights = (ok > 0.5) & ((seg == 0) | (seg == own[:, None, None]))
    fit = fit_moffat(residual, x, y, hlr[candidates], table["peak"][candidates], half=half, stamp_weights=weights)
    sane = np.isfinite(fit.fwhm) & (fit.fwhm > 0.5) & (fit.fwhm < 4.0 * half)
    fitted = candidates[sane]
    if fitted.size == 0:
        return
    table["fwhm"][fitted] = fit.fwhm[sane]
    table["moffat_beta"][fitted] = fit.beta[sane]
    # The half-light diameter over-reads winged profiles by a factor set by the PSF, which
    # the fitted stars of this very frame measure.
    ratio = float(np.median(fit.fwhm[sane] / (2.0 * hlr[fitted])))
    rest = np.setdiff1d(np.arange(len(table)), fitted)
    table["fwhm"][rest] = 2.0 * hlr[rest] * ratio
