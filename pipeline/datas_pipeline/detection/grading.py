"""Frame grading: measure each frame, then judge it against its session.

Per frame (sources sharper than any star, i.e. hot pixels and cosmic rays, left out first:
:mod:`datas_pipeline.detection.sharpness`): star count, median FWHM and eccentricity of clean stars, background level and
noise, the flux of its brightest stars, and a signal-to-noise weight. Per session: robust
statistics (median and MAD-sigma) of each measure, and a decision per frame with reasons:

- clouds: far fewer stars, or much fainter stars, than the session (or than a reference
  catalogue predicts, once the frame is solved);
- trailing: stars elongated beyond the session's spread;
- poor focus or seeing: stars wider along their minor axis than the session's spread allows
  (trailing widens only the major axis, so one cause does not masquerade as the other);
- bright sky: a background far above the session's.

The weight is the squared signal-to-noise of a point source in the sky-limited regime,
(star flux / (noise x FWHM))², normalised so the session's best frame has weight 1.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from datas_pipeline.detection.extract import (
    FLAG_SATURATED,
    FLAG_TRUNCATED,
    estimate_background,
    extract_sources,
)
from datas_pipeline.detection.sharpness import ABSOLUTE_MIN_FWHM_PX, gaussian_sharpness, sub_psf_sources
from datas_pipeline.errors import PipelineError
from datas_pipeline.robust import median_sigma

# Sources used for shape measures: well above the noise and cleanly measured.
SHAPE_MIN_SNR = 20.0
BRIGHT_STARS = 20


@dataclass(frozen=True)
class FrameQuality:
    """Measures of one frame. Pixel units; background and noise in ADU; weight unnormalised.

    ``minor_axis_px`` is the median second-moment rms along the stars' minor axis: it grows
    with defocus and seeing but hardly with trailing, which stretches the major axis only.
    """

    file: str | None
    stars: int
    fwhm_px: float
    minor_axis_px: float
    eccentricity: float
    background: float
    noise: float
    star_flux: float
    weight: float
    catalog_expected: int | None = None
    catalog_found: int | None = None


@dataclass(frozen=True)
class GradingRules:
    """How far from the session a frame may stray (robust sigmas and fractions), plus limits.

    Absolute limits (None: unused) apply even when the whole session is bad.
    """

    sigma: float = 3.0
    min_star_fraction: float = 0.6
    min_flux_fraction: float = 0.6
    min_catalog_fraction: float = 0.5
    focus_fraction: float = 1.25
    min_eccentricity_jump: float = 0.15
    bright_sky_fraction: float = 0.3
    max_fwhm_px: float | None = None
    max_eccentricity: float | None = None
    min_stars: int = 5


@dataclass
class FrameGrade:
    """A frame's measures, the decision and its reasons, and its weight within the session."""

    quality: FrameQuality
    accepted: bool = True
    reasons: list[str] = field(default_factory=list)
    weight: float = 0.0
    rank: int | None = None

    def as_dict(self) -> dict:
        q = self.quality
        out = {"file": q.file, "accepted": self.accepted, "reasons": self.reasons, "stars": q.stars,
               "fwhm_px": _round(q.fwhm_px), "eccentricity": _round(q.eccentricity),
               "background": _round(q.background), "noise": _round(q.noise), "weight": _round(self.weight),
               "rank": self.rank, "minor_axis_px": _round(q.minor_axis_px), "star_flux": _round(q.star_flux)}
        if q.catalog_expected is not None:
            out["catalog_expected"], out["catalog_found"] = q.catalog_expected, q.catalog_found
        return out


@dataclass(frozen=True)
class SessionGrade:
    """Every frame's grade, the session statistics and the best (reference) frame."""

    frames: list[FrameGrade]
    statistics: dict[str, dict[str, float]]
    best: int | None

    def as_dict(self) -> dict:
        best = self.frames[self.best].quality.file if self.best is not None else None
        return {"frames": [f.as_dict() for f in self.frames], "best": best, "best_index": self.best,
                "statistics": self.statistics}


def _round(value: float | None, digits: int = 4) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return float(round(value, digits))


def measure_frame(
    image: np.ndarray,
    file: str | None = None,
    mask: np.ndarray | None = None,
    threshold_sigma: float = 5.0,
    saturation: float | None = None,
    catalog_xy: np.ndarray | None = None,
    match_radius_px: float = 2.0,
) -> FrameQuality:
    """Measure one frame (2-D, ADU).

    ``catalog_xy`` is an (n, 2) array of pixel positions of reference-catalogue stars
    expected to be detectable in this frame (from its WCS); how many of them have a source
    within ``match_radius_px`` gives a cloud check independent of the session.
    """
    data = np.asarray(image, dtype=np.float32)
    if data.ndim != 2:
        raise PipelineError(f"grading needs a 2-D image, got shape {data.shape}")
    bkg = estimate_background(data, mask=mask)
    # Hot pixels and cosmic rays of a raw frame are not stars: they would take the profile
    # fits and set the frame's FWHM and star count. Lone pixels go before measuring, then
    # whatever is sharper than half the frame's own stellar FWHM allows.
    sources = extract_sources(data, mask=mask, threshold_sigma=threshold_sigma, background=bkg, saturation=saturation,
                              max_sharpness=gaussian_sharpness(ABSOLUTE_MIN_FWHM_PX))
    flags = sources["flag"].astype(np.int64)
    clean = (flags & (FLAG_SATURATED | FLAG_TRUNCATED)) == 0
    sharp = sub_psf_sources(data - bkg.level, sources, clean & (sources["snr"] >= SHAPE_MIN_SNR))
    sources, clean = sources[~sharp], clean[~sharp]
    shaped = clean & (sources["snr"] >= SHAPE_MIN_SNR) & np.isfinite(sources["moffat_beta"])
    if shaped.sum() < 3:
        shaped = clean & (sources["snr"] >= SHAPE_MIN_SNR / 2)
    good = sources[shaped]
    fwhm = float(np.median(good["fwhm"])) if len(good) else float("nan")
    minor = float(np.median(good["b"])) if len(good) else float("nan")
    ecc = float(np.median(good["eccentricity"])) if len(good) else float("nan")
    bright = np.sort(sources["flux"][clean])[::-1][:BRIGHT_STARS]
    star_flux = float(np.median(bright)) if bright.size else 0.0
    weight = (star_flux / (bkg.global_rms * fwhm)) ** 2 if len(good) and bkg.global_rms > 0 else 0.0
    expected = found = None
    if catalog_xy is not None:
        xy = np.asarray(catalog_xy, dtype=float).reshape(-1, 2)
        expected = len(xy)
        if expected and len(sources):
            d = np.hypot(xy[:, 0, None] - sources["x"][None], xy[:, 1, None] - sources["y"][None])
            found = int((d.min(axis=1) <= match_radius_px).sum())
        else:
            found = 0
    return FrameQuality(
        file=file, stars=int(len(sources)), fwhm_px=fwhm, minor_axis_px=minor, eccentricity=ecc,
        background=bkg.global_level, noise=bkg.global_rms, star_flux=star_flux, weight=float(weight),
        catalog_expected=expected, catalog_found=found,
    )


_robust = median_sigma


def grade_session(qualities: Sequence[FrameQuality], rules: GradingRules = GradingRules()) -> SessionGrade:
    """Accept or reject each frame against the session, rank the accepted by weight."""
    if not qualities:
        raise PipelineError("no frames to grade")
    measures = ("stars", "fwhm_px", "minor_axis_px", "eccentricity", "background", "noise", "star_flux", "weight")
    table = {m: np.array([getattr(q, m) for q in qualities], dtype=float) for m in measures}
    stats = {m: dict(zip(("median", "sigma"), _robust(v), strict=True)) for m, v in table.items()}
    grades = [FrameGrade(q) for q in qualities]
    for grade in grades:
        grade.reasons = _reasons(grade.quality, stats, rules)
        grade.accepted = not grade.reasons
    top = max((g.quality.weight for g in grades if g.accepted), default=0.0)
    for grade in grades:
        grade.weight = grade.quality.weight / top if top > 0 and grade.accepted else 0.0
    order = sorted((i for i, g in enumerate(grades) if g.accepted), key=lambda i: -grades[i].weight)
    for rank, i in enumerate(order, start=1):
        grades[i].rank = rank
    return SessionGrade(grades, {m: {k: _round(v) for k, v in s.items()} for m, s in stats.items()},
                        order[0] if order else None)


def _reasons(q: FrameQuality, stats: dict[str, dict[str, float]], rules: GradingRules) -> list[str]:
    reasons: list[str] = []
    med = {m: s["median"] for m, s in stats.items()}
    sig = {m: s["sigma"] for m, s in stats.items()}
    if q.stars < rules.min_stars:
        return [f"no usable stars: {q.stars} detected (clouds, or not a sky frame)"]
    ecc_limit = max(med["eccentricity"] + rules.sigma * sig["eccentricity"],
                    med["eccentricity"] + rules.min_eccentricity_jump)
    if rules.max_eccentricity is not None:
        ecc_limit = min(ecc_limit, rules.max_eccentricity)
    if np.isfinite(q.eccentricity) and q.eccentricity > ecc_limit:
        reasons.append(f"trailing: eccentricity {q.eccentricity:.2f} against a session median of "
                       f"{med['eccentricity']:.2f}")
    focus_limit = max(med["minor_axis_px"] + rules.sigma * sig["minor_axis_px"],
                      rules.focus_fraction * med["minor_axis_px"])
    too_wide = np.isfinite(q.minor_axis_px) and q.minor_axis_px > focus_limit
    if rules.max_fwhm_px is not None and np.isfinite(q.fwhm_px) and q.fwhm_px > rules.max_fwhm_px:
        too_wide = True
    if too_wide:
        reasons.append(f"poor focus or seeing: FWHM {q.fwhm_px:.2f} px against a session median of "
                       f"{med['fwhm_px']:.2f} px")
    sky_step = max(rules.sigma * sig["background"], rules.bright_sky_fraction * abs(med["background"]))
    if q.background > med["background"] + sky_step:
        reasons.append(f"bright sky: background {q.background:.0f} ADU against a session median of "
                       f"{med['background']:.0f}")
    cloud = []
    if q.star_flux < rules.min_flux_fraction * med["star_flux"]:
        cloud.append(f"bright stars at {100 * q.star_flux / med['star_flux']:.0f}% of the session's flux")
    if q.catalog_expected:
        fraction = (q.catalog_found or 0) / q.catalog_expected
        if fraction < rules.min_catalog_fraction:
            cloud.append(f"{q.catalog_found} of {q.catalog_expected} catalogue stars found")
    # Blur and bright sky also cost faint stars; a low count alone means clouds only when
    # nothing else explains it.
    if q.stars < rules.min_star_fraction * med["stars"] and (cloud or not reasons):
        cloud.append(f"{q.stars} stars against a session median of {med['stars']:.0f}")
    if cloud:
        reasons.insert(0, "clouds: " + "; ".join(cloud))
    return reasons


def quality_as_dict(q: FrameQuality) -> dict:
    return {k: (_round(v) if isinstance(v, float) else v) for k, v in asdict(q).items()}
