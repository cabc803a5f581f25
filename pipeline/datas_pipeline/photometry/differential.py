"""Differential photometry, zero points and airmass: turning fluxes into magnitudes.

A zero point ZP = m_catalogue - m_instrumental is estimated from comparison stars as an
inverse-variance weighted mean with iterative 3-sigma rejection (a variable or blended
comparison is dropped, and said so). Its error is the error of the weighted mean, inflated
by sqrt(reduced chi²) when the comparisons scatter more than their errors allow. A target's
magnitude is m = m_instrumental + ZP with the errors added in quadrature; a check star,
measured the same way but left out of the zero point, shows whether the result holds.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from datetime import datetime

import numpy as np

from datas_pipeline.errors import PipelineError
from datas_pipeline.sky.ephemeris import kasten_young_airmass, standard_pressure_hpa  # noqa: F401  (re-exported)
from datas_pipeline.sky.visibility import altaz


@dataclass(frozen=True)
class Comparison:
    """A comparison (or check) star: catalogue magnitude and our instrumental measurement."""

    catalog_mag: float
    instrumental_mag: float
    instrumental_err: float
    catalog_err: float = 0.0
    ra_deg: float | None = None
    dec_deg: float | None = None
    name: str | None = None

    @property
    def variance(self) -> float:
        return self.instrumental_err**2 + self.catalog_err**2


@dataclass(frozen=True)
class ZeroPoint:
    """The zero point (mag), its error, and which comparisons were used or rejected."""

    value: float
    error: float
    used: tuple[int, ...]
    rejected: tuple[int, ...]
    reduced_chi2: float
    residuals: tuple[float, ...]


@dataclass
class PhotometryResult:
    """A magnitude in the shape of an observation record (what the portal stores).

    ``method`` is "differential-single", "differential-ensemble" or "zero-point".
    """

    magnitude: float
    magnitude_error: float
    method: str
    instrumental_mag: float
    instrumental_err: float
    zero_point: float
    zero_point_error: float
    comparison_stars: list[dict] = field(default_factory=list)
    check_star: dict | None = None
    filter: str | None = None
    time_utc: str | None = None
    jd_mid: float | None = None
    airmass: float | None = None
    exposure_s: float | None = None
    snr: float | None = None
    aperture_px: float | None = None
    annulus_px: list[float] | None = None

    def as_dict(self) -> dict:
        def tidy(value):
            if isinstance(value, float):
                return round(value, 6) if math.isfinite(value) else None
            return [tidy(v) for v in value] if isinstance(value, list) else value

        return {k: tidy(v) for k, v in asdict(self).items()}


def fit_zero_point(comparisons: list[Comparison], clip_sigma: float = 3.0, min_stars: int = 1) -> ZeroPoint:
    """Weighted zero point over ``comparisons`` with iterative outlier rejection."""
    if not comparisons:
        raise PipelineError("no comparison stars: at least one is needed")
    zp = np.array([c.catalog_mag - c.instrumental_mag for c in comparisons], dtype=float)
    var = np.array([max(c.variance, 1e-8) for c in comparisons], dtype=float)
    usable = np.isfinite(zp) & np.isfinite(var)
    if usable.sum() < min_stars:
        raise PipelineError(f"only {int(usable.sum())} comparison stars were measured; {min_stars} needed")
    keep = usable.copy()
    # Test the most deviant star against the mean and scatter of the others, so an outlier
    # cannot hide by inflating the scatter it is judged by.
    while keep.sum() > max(min_stars, 2):
        idx = np.flatnonzero(keep)
        centre = _weighted_median(zp[idx], 1.0 / var[idx])
        k = idx[np.argmax(np.abs(zp[idx] - centre) / np.sqrt(var[idx]))]
        others = idx[idx != k]
        w = 1.0 / var[others]
        mean_others = float(np.sum(w * zp[others]) / np.sum(w))
        chi2_others = float(np.sum(w * (zp[others] - mean_others) ** 2) / (len(others) - 1)) if len(others) > 1 else 1.0
        pull = abs(zp[k] - mean_others) / math.sqrt((var[k] + 1.0 / np.sum(w)) * max(chi2_others, 1.0))
        if pull <= clip_sigma:
            break
        keep[k] = False
    w = 1.0 / var[keep]
    mean = float(np.sum(w * zp[keep]) / np.sum(w))
    n = int(keep.sum())
    chi2 = float(np.sum(w * (zp[keep] - mean) ** 2) / (n - 1)) if n > 1 else 1.0
    error = math.sqrt(1.0 / np.sum(1.0 / var[keep])) * math.sqrt(max(chi2, 1.0))
    return ZeroPoint(
        value=mean, error=error, used=tuple(np.flatnonzero(keep).tolist()),
        rejected=tuple(np.flatnonzero(usable & ~keep).tolist()), reduced_chi2=chi2,
        residuals=tuple(float(r) for r in (zp - mean)),
    )


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cumulative = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cumulative, 0.5 * cumulative[-1])])


def differential_magnitude(
    target_mag: float,
    target_err: float,
    comparisons: list[Comparison],
    check: Comparison | None = None,
    method: str = "ensemble",
) -> PhotometryResult:
    """The target's calibrated magnitude from its instrumental one and the comparisons.

    ``method="single"`` uses the first comparison only (classic V - C); ``"ensemble"``
    all of them through :func:`fit_zero_point`.
    """
    if method not in ("single", "ensemble"):
        raise PipelineError(f"method must be 'single' or 'ensemble', not {method!r}")
    if not np.isfinite(target_mag):
        raise PipelineError("the target has no positive flux in its aperture: no magnitude can be measured")
    chosen = comparisons[:1] if method == "single" else comparisons
    zp = fit_zero_point(chosen)
    magnitude = target_mag + zp.value
    error = math.sqrt(target_err**2 + zp.error**2)
    stars = []
    for i, c in enumerate(chosen):
        stars.append({"name": c.name, "ra_deg": c.ra_deg, "dec_deg": c.dec_deg, "catalog_mag": c.catalog_mag,
                      "instrumental_mag": round(c.instrumental_mag, 6), "instrumental_err": round(c.instrumental_err, 6),
                      "used": i in zp.used, "residual": round(zp.residuals[i], 6)})
    check_record = None
    if check is not None:
        measured = check.instrumental_mag + zp.value
        check_err = math.sqrt(check.instrumental_err**2 + zp.error**2)
        check_record = {"name": check.name, "ra_deg": check.ra_deg, "dec_deg": check.dec_deg,
                        "catalog_mag": check.catalog_mag, "measured_mag": round(measured, 6),
                        "error": round(check_err, 6), "residual": round(measured - check.catalog_mag, 6)}
    return PhotometryResult(
        magnitude=magnitude, magnitude_error=error, method=f"differential-{method}",
        instrumental_mag=target_mag, instrumental_err=target_err, zero_point=zp.value, zero_point_error=zp.error,
        comparison_stars=stars, check_star=check_record,
    )


def airmass(
    ra_deg: float, dec_deg: float, time_utc: datetime, lat_deg: float, lon_deg: float, elevation_m: float = 0.0
) -> float:
    """Airmass of (RA, Dec) (ICRS, degrees) seen from a site (east-positive longitude) at a UTC time.

    The scheduler's own computation (datas_pipeline.sky: the vectorised ephemeris, refraction
    at the standard pressure of the elevation, Kasten & Young on the apparent altitude), at
    least 1 (the fit gives 0.9997 at the zenith); ``inf`` below the horizon.
    """
    cube = altaz([ra_deg], [dec_deg], [lat_deg], [lon_deg], [time_utc],
                 pressure_hpa=float(standard_pressure_hpa(elevation_m)))
    value = float(cube.airmass[0, 0, 0])
    return max(value, 1.0) if np.isfinite(value) else value


def header_airmass(info) -> tuple[float | None, str]:
    """Airmass at mid-exposure from a :class:`~datas_pipeline.io.headers.FrameHeader`, and its source.

    Computed from pointing, site and time when the header has them all, else the AIRMASS
    keyword as written, else None.
    """
    when = info.mid_exposure or info.date_obs
    needed = (info.ra_deg, info.dec_deg, info.site_lat_deg, info.site_lon_deg, when)
    if all(v is not None for v in needed):
        value = airmass(info.ra_deg, info.dec_deg, when, info.site_lat_deg, info.site_lon_deg,
                        info.site_elevation_m or 0.0)
        return (None, "object below the horizon") if not np.isfinite(value) else (value, "computed")
    if info.airmass is not None:
        return info.airmass, "header"
    return None, "unknown: the header lacks pointing, site or time, and AIRMASS"
