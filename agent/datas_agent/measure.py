"""Measure a fresh frame at the telescope: sources, seeing, the target's photometry, quality flags.

Uses the shared extraction (``datas_pipeline.detection.extract``) so the agent and the server measure alike.
The target is found through the frame's WCS when it has one, otherwise at the frame centre
(where the mount was pointed; flagged ``position_assumed``). Photometry is aperture
photometry with a local sky annulus (``datas_pipeline.photometry.aperture``), calibrated with an ensemble
zero point (``datas_pipeline.photometry.differential``) when the tasking lists comparison stars (``ra_deg``,
``dec_deg``, ``magnitude``) and the frame has a WCS; otherwise instrumental
(``-2.5 log10(flux/exptime) + 25``).
"""
from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from astropy.wcs.utils import proj_plane_pixel_scales
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.headers import electrons_per_adu
from datas_pipeline.photometry.aperture import Apertures, NoiseModel, aperture_photometry
from datas_pipeline.photometry.differential import Comparison, differential_magnitude

log = logging.getLogger(__name__)
INSTRUMENTAL_ZERO_POINT = 25.0
MIN_STARS = 5


@dataclass
class Measurement:
    """What the agent learned from one frame; ``record_fields`` maps it onto API v1 fields."""

    n_sources: int
    fwhm_px: float | None = None
    seeing_arcsec: float | None = None
    elongation: float | None = None
    background_adu: float | None = None
    photometry: dict | None = None
    astrometry: dict | None = None
    target_xy: tuple[float, float] | None = None
    flags: list[str] = field(default_factory=list)

    def record_fields(self) -> dict:
        fields = {"seeing_arcsec": _round(self.seeing_arcsec, 2), "quality_flags": sorted(self.flags)}
        if self.photometry:
            fields["photometry"] = self.photometry
        if self.astrometry:
            fields["astrometry"] = self.astrometry
        return fields


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def frame_wcs(header: fits.Header) -> WCS | None:
    """The celestial WCS of a header, or ``None`` when it has none."""
    if "CTYPE1" not in header:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # a malformed WCS is treated as none, and flagged
            return None
    return wcs if wcs.has_celestial else None


def _gain(header: fits.Header) -> float:
    """e-/ADU as the server reads it (datas_pipeline.io.headers): 1.0 when the header does not state it."""
    gain = electrons_per_adu(header)
    return gain if gain is not None and gain > 0 else 1.0


def _nearest(sources: np.ndarray, x: float, y: float, radius_px: float) -> int | None:
    if len(sources) == 0:
        return None
    d2 = (sources["x"] - x) ** 2 + (sources["y"] - y) ** 2
    best = int(np.argmin(d2))
    return best if d2[best] <= radius_px**2 else None


def measure_frame(
    data: np.ndarray,
    header: fits.Header,
    target_ra_deg: float,
    target_dec_deg: float,
    exposure_s: float,
    pixel_scale_arcsec: float | None = None,
    comparison_stars: list[dict] | None = None,
    search_radius_arcsec: float = 30.0,
    pointing_error_arcsec: float = 180.0,
) -> Measurement:
    """Measure ``data`` (ADU, ``[y, x]``) and the J2000 target in it.

    ``pixel_scale_arcsec`` is used when the header has no WCS; the target is then assumed at
    the centre and searched for within ``pointing_error_arcsec`` (the mount's pointing error). Returns a :class:`Measurement` whose flags explain anything doubtful.
    """
    image = np.asarray(data, dtype=np.float32)
    try:
        sources = extract_sources(image, threshold_sigma=5.0)
    except PipelineError as exc:
        log.warning("extraction failed: %s", exc)
        return Measurement(n_sources=0, flags=["extraction_failed"])
    m = Measurement(n_sources=len(sources))
    wcs = frame_wcs(header)
    scale = pixel_scale_arcsec
    if wcs is not None:
        scale = float(np.mean(proj_plane_pixel_scales(wcs))) * 3600.0  # WCS in degrees
    if len(sources) < MIN_STARS:
        m.flags.append("few_stars")
    stars = sources[(sources["flag"] == 0) & (sources["npix"] >= 5)] if len(sources) else sources
    if len(stars):
        m.fwhm_px = float(np.median(stars["fwhm"]))
        m.elongation = float(np.median(stars["elongation"]))
        m.seeing_arcsec = m.fwhm_px * scale if scale else None
        if m.elongation > 1.5:
            m.flags.append("trailed")
    m.background_adu = float(np.median(image))

    if wcs is not None:
        x, y = (float(v) for v in wcs.world_to_pixel_values(target_ra_deg, target_dec_deg))
    else:
        y, x = (image.shape[0] - 1) / 2.0, (image.shape[1] - 1) / 2.0
        m.flags.append("position_assumed")
    if not (0 <= x < image.shape[1] and 0 <= y < image.shape[0]):
        m.flags.append("target_outside_frame")
        return m
    tolerance = search_radius_arcsec if wcs is not None else max(search_radius_arcsec, pointing_error_arcsec)
    radius_px = max(tolerance / scale if scale else 10.0, 3.0)
    index = _nearest(sources, x, y, radius_px)
    if index is None:
        m.flags.append("target_not_found")
        return m
    target = sources[index]
    target_index = index
    m.target_xy = (float(target["x"]), float(target["y"]))
    saturation = float(header.get("SATURATE", 65535))
    if target["peak"] + (m.background_adu or 0.0) >= 0.95 * saturation:
        m.flags.append("target_saturated")
    if target["flux"] <= 0:
        m.flags.append("target_not_found")
        return m
    try:
        m.photometry = _photometry(image, sources, target_index, exposure_s, wcs, comparison_stars,
                                   max(radius_px, 3.0 * (m.fwhm_px or 3.0)) if wcs is None else 3.0 * (m.fwhm_px or 3.0),
                                   m.fwhm_px or 3.0, _gain(header))
    except PipelineError as exc:
        m.flags.append("photometry_failed")
        log.warning("photometry failed: %s", exc)
    if wcs is not None:
        ra, dec = (float(v) for v in wcs.pixel_to_world_values(target["x"], target["y"]))
        centroid_err_px = max(m.fwhm_px or 2.0, 1.0) / max(float(target["flux"] / target["flux_err"]), 1.0)
        m.astrometry = {"ra_deg": round(ra % 360.0, 7), "dec_deg": round(dec, 7),
                        "error_arcsec": round(max(centroid_err_px * scale, 0.05), 3)}
    return m


def _photometry(image: np.ndarray, sources: np.ndarray, target_index: int, exposure_s: float, wcs: WCS | None,
                comparison_stars: list[dict] | None, radius_px: float, fwhm_px: float, gain: float) -> dict:
    """Aperture photometry (``datas_pipeline.photometry.aperture``), calibrated against comparisons when possible."""
    target = sources[target_index]
    rule = Apertures.for_fwhm(fwhm_px)  # the server's aperture rule (datas_pipeline.photometry.aperture.Apertures)
    aperture, annulus = rule.radius, (rule.inner, rule.outer)
    noise = NoiseModel(gain=gain if gain > 0 else 1.0, read_noise=5.0, exposure_s=exposure_s)
    xs, ys, comps = [float(target["x"])], [float(target["y"])], []
    if comparison_stars and wcs is not None:
        for star in comparison_stars:
            try:
                ra, dec = float(star.get("ra_deg", star.get("ra"))), float(star.get("dec_deg", star.get("dec")))
                mag = float(star.get("magnitude", star.get("mag")))
            except (TypeError, ValueError):
                continue
            cx, cy = (float(v) for v in wcs.world_to_pixel_values(ra, dec))
            index = _nearest(sources, cx, cy, radius_px)
            if index is None or index == target_index:
                continue
            xs.append(float(sources[index]["x"]))
            ys.append(float(sources[index]["y"]))
            comps.append((ra, dec, mag, star.get("name")))
    measured = aperture_photometry(image, np.array(xs), np.array(ys), aperture, annulus, noise=noise)
    t = measured[0]
    if not np.isfinite(t["mag"]):
        raise PipelineError("the target has no positive flux in its aperture")
    result = {"snr": round(float(t["snr"]), 1), "flux_adu": round(float(t["flux"]), 2),
              "aperture_px": round(aperture, 2)}
    comparisons = [Comparison(catalog_mag=mag, instrumental_mag=float(row["mag"]), instrumental_err=float(row["mag_err"]),
                              ra_deg=ra, dec_deg=dec, name=name)
                   for (ra, dec, mag, name), row in zip(comps, measured[1:], strict=True)
                   if np.isfinite(row["mag"]) and row["flag"] == 0]
    if comparisons:
        calibrated = differential_magnitude(float(t["mag"]), float(t["mag_err"]), comparisons, method="ensemble")
        result.update(magnitude=round(calibrated.magnitude, 4), error=round(calibrated.magnitude_error, 4),
                      method="ensemble", zero_point=round(calibrated.zero_point, 4),
                      comparison_stars=[{"name": c["name"], "ra_deg": c["ra_deg"], "dec_deg": c["dec_deg"],
                                         "magnitude": c["catalog_mag"], "used": c["used"]}
                                        for c in calibrated.comparison_stars])
        return result
    result.update(magnitude=round(INSTRUMENTAL_ZERO_POINT + float(t["mag"]), 4), error=round(float(t["mag_err"]), 4),
                  method="instrumental", comparison_stars=[])
    return result
