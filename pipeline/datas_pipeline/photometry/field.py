"""A target's calibrated magnitude on a solved frame, against catalogue stars in the field.

The target is measured where the WCS puts it (recentred when its centroid is found within
one FWHM, forced at the predicted position otherwise, as a faint or fading target needs).
Comparison stars come from a reference catalogue (Tycho-2 by default): inside the frame,
clear of the edges, isolated from other catalogue stars, unsaturated and well measured.
The check star is the comparison closest in magnitude to the target, left out of the
ensemble zero point so it tests the result (datas_pipeline.photometry.differential).

Pixel positions are 0-based (x column, y row); magnitudes in the catalogue's band; fluxes
and errors as datas_pipeline.photometry.aperture gives them (ADU, CCD equation).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from astropy.wcs import WCS

from datas_pipeline.errors import PipelineError
from datas_pipeline.photometry.aperture import (
    FLAG_EDGE,
    FLAG_SATURATED,
    Apertures,
    NoiseModel,
    aperture_photometry,
    recenter,
)
from datas_pipeline.photometry.differential import Comparison, PhotometryResult, differential_magnitude

MIN_COMPARISON_SNR = 10.0
LOW_SNR = 5.0


class TargetNotInField(PipelineError):
    """The target's position does not fall on the frame (clear of the edges)."""


@dataclass
class FieldPhotometry:
    """The outcome: the calibrated result (None when the target has no positive flux), where
    the target was measured, and flags saying what is doubtful."""

    result: PhotometryResult | None
    target_x: float
    target_y: float
    target_ra_deg: float
    target_dec_deg: float
    recentred: bool
    target_snr: float | None
    apertures: Apertures
    comparisons_in_field: int
    flags: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {"target_x": round(self.target_x, 3), "target_y": round(self.target_y, 3),
               "target_ra_deg": round(self.target_ra_deg, 7), "target_dec_deg": round(self.target_dec_deg, 7),
               "recentred": self.recentred,
               "target_snr": None if self.target_snr is None else round(float(self.target_snr), 2),
               "aperture_px": round(self.apertures.radius, 3),
               "annulus_px": [round(self.apertures.inner, 3), round(self.apertures.outer, 3)],
               "comparisons_in_field": self.comparisons_in_field, "flags": list(self.flags)}
        if self.result is not None:
            out.update(self.result.as_dict())
        return out


def in_frame(x: np.ndarray, y: np.ndarray, shape: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """Whether pixel positions (0-based) lie at least ``margin`` pixels inside an image of ``shape`` (ny, nx)."""
    ny, nx = shape
    return (x >= margin) & (x <= nx - 1 - margin) & (y >= margin) & (y <= ny - 1 - margin)


def comparison_candidates(
    catalog: np.ndarray, wcs: WCS, shape: tuple[int, int], target_xy: tuple[float, float], apertures: Apertures,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Catalogue stars usable as comparisons: (rows, x, y).

    On the frame with the whole annulus inside it, not within two annuli of the target, and
    without another catalogue star inside their own annulus (a blend skews both).
    """
    if len(catalog) == 0:
        return catalog, np.array([]), np.array([])
    x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
    keep = np.isfinite(x) & np.isfinite(y) & in_frame(x, y, shape, apertures.outer + 2.0)
    keep &= np.hypot(x - target_xy[0], y - target_xy[1]) > 2.0 * apertures.outer
    on_frame = np.flatnonzero(np.isfinite(x) & np.isfinite(y) & in_frame(x, y, shape, 0.0))
    if len(on_frame) > 1:
        from scipy.spatial import cKDTree

        tree = cKDTree(np.column_stack([x[on_frame], y[on_frame]]))
        candidates = np.flatnonzero(keep)
        neighbours = tree.query_ball_point(np.column_stack([x[candidates], y[candidates]]), apertures.outer,
                                           return_length=True)
        keep[candidates[neighbours > 1]] = False
    return catalog[keep], x[keep], y[keep]


def measure_target(
    image: np.ndarray,
    wcs: WCS,
    target_ra_deg: float,
    target_dec_deg: float,
    catalog: np.ndarray,
    *,
    fwhm_px: float,
    noise: NoiseModel,
    saturation: float | None = None,
    max_comparisons: int = 12,
) -> FieldPhotometry:
    """Differential photometry of one target on a 2-D frame (ADU, sky not subtracted).

    Parameters
    ----------
    image : 2-D array
        The (calibrated) frame in ADU.
    wcs : astropy.wcs.WCS
        The frame's celestial WCS.
    target_ra_deg, target_dec_deg : float
        Target position, degrees (ICRS).
    catalog : structured array
        ``ra``, ``dec`` (degrees) and ``mag`` of reference stars around the field
        (datas_pipeline.catalog.reference.tycho2_cone or read_reference_catalog).
    fwhm_px : float
        The frame's stellar FWHM, pixels; sets the aperture and annulus.
    noise : NoiseModel
        Gain, read noise and exposure for the CCD-equation errors.
    saturation : float, optional
        ADU at which pixels saturate; saturated stars are flagged (never comparisons).
    max_comparisons : int
        At most this many comparison stars, nearest in magnitude to the target.

    Raises
    ------
    TargetNotInField
        The target falls off the frame or too near its edge for an annulus.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise PipelineError(f"photometry needs a 2-D image, got shape {data.shape}")
    apertures = Apertures.for_fwhm(fwhm_px)
    fwhm = float(fwhm_px) if np.isfinite(fwhm_px) and fwhm_px > 0 else 3.0
    px, py = (float(v[0]) for v in wcs.all_world2pix([target_ra_deg], [target_dec_deg], 0))
    if not (np.isfinite(px) and np.isfinite(py)) or not in_frame(np.array([px]), np.array([py]), data.shape,
                                                                  apertures.outer)[0]:
        raise TargetNotInField(f"the target ({target_ra_deg:.5f}, {target_dec_deg:.5f}) falls at pixel "
                               f"({px:.0f}, {py:.0f}), off the {data.shape[1]}x{data.shape[0]} frame or within "
                               f"{apertures.outer:.0f} px of its edge")
    rows, sx, sy = comparison_candidates(catalog, wcs, data.shape, (px, py), apertures)
    # One recentring pass for the target and the comparisons (it estimates the sky once).
    cx, cy, ok = recenter(data, np.concatenate([[px], sx]), np.concatenate([[py], sy]), fwhm)
    tx, ty, recentred = float(cx[0]), float(cy[0]), bool(ok[0])
    flags = [] if recentred else ["target_forced_position"]
    found = ok[1:]
    rows, sx, sy = rows[found], cx[1:][found], cy[1:][found]
    measured = aperture_photometry(data, np.concatenate([[tx], sx]), np.concatenate([[ty], sy]),
                                   apertures.radius, (apertures.inner, apertures.outer), noise=noise,
                                   saturation=saturation)
    target, stars = measured[0], measured[1:]
    ra, dec = (float(v[0]) for v in wcs.all_pix2world([tx], [ty], 0))
    outcome = FieldPhotometry(None, tx, ty, ra % 360.0, dec, recentred,
                              float(target["snr"]) if np.isfinite(target["snr"]) else None, apertures, len(rows), flags)
    if target["flag"] & FLAG_SATURATED:
        flags.append("target_saturated")
    if target["flag"] & FLAG_EDGE:
        flags.append("target_at_edge")
    if not np.isfinite(target["mag"]):
        flags.append("target_not_detected")
        return outcome
    if outcome.target_snr is not None and outcome.target_snr < LOW_SNR:
        flags.append("low_snr")
    usable = (stars["flag"] == 0) & np.isfinite(stars["mag"]) & (stars["snr"] >= MIN_COMPARISON_SNR)
    if usable.sum() == 0:
        flags.append("no_comparison_stars")
        return outcome
    zero_guess = float(np.median(rows["mag"][usable] - stars["mag"][usable]))
    target_guess = float(target["mag"]) + zero_guess
    order = np.flatnonzero(usable)[np.argsort(np.abs(rows["mag"][usable] - target_guess), kind="stable")]
    chosen = order[:max_comparisons + 1]
    comparisons = [Comparison(catalog_mag=float(rows["mag"][i]), instrumental_mag=float(stars["mag"][i]),
                              instrumental_err=float(stars["mag_err"][i]), ra_deg=float(rows["ra"][i]),
                              dec_deg=float(rows["dec"][i]), name=_position_name(rows["ra"][i], rows["dec"][i]))
                   for i in chosen]
    check = comparisons.pop(0) if len(comparisons) >= 3 else None
    comparisons = comparisons[:max_comparisons]
    if len(comparisons) < 2:
        flags.append("few_comparison_stars")
    outcome.result = differential_magnitude(float(target["mag"]), float(target["mag_err"]), comparisons, check,
                                            method="ensemble")
    outcome.result.snr = outcome.target_snr
    outcome.result.exposure_s = noise.exposure_s or None
    if outcome.result.check_star is not None:
        outcome.result.check_star["instrumental_mag"] = round(check.instrumental_mag, 6)
    return outcome


def _position_name(ra_deg: float, dec_deg: float) -> str:
    """A catalogue-free star label from its position: 'J053412.3+220145' (at most 16 characters)."""
    ra_h = (float(ra_deg) % 360.0) / 15.0
    h, rem = divmod(ra_h * 3600.0, 3600.0)
    m, s = divmod(rem, 60.0)
    sign = "+" if dec_deg >= 0 else "-"
    d_abs = abs(float(dec_deg)) * 3600.0
    dd, drem = divmod(d_abs, 3600.0)
    dm, ds = divmod(drem, 60.0)
    s, ds = round(s, 1), round(ds)
    if s >= 60.0:
        s, m = 0.0, m + 1
    if ds >= 60:
        ds, dm = 0, dm + 1
    return f"J{int(h) % 24:02d}{int(m):02d}{s:04.1f}{sign}{int(dd):02d}{int(dm):02d}{int(ds):02d}"
