"""Register frames on a reference by their stars, and refuse what fails a stated gate.

``register_image(reference, image)`` finds the transform taking reference pixels to frame
pixels (see :mod:`datas_pipeline.registration.transforms` for the convention) with no prior guess:
any shift, any rotation (meridian flips included), small scale changes, mirrored frames,
partial overlap, few stars. Matching is :mod:`datas_pipeline.registration.match`; positions are
Gaussian-windowed centroids (:mod:`datas_pipeline.registration.stars`), or any table with ``x, y,
flux`` columns such as :func:`datas_pipeline.detection.extract.extract_sources` returns. The model is a
least-squares fit over all matched stars, refined by re-pairing and clipping.

Every result carries its quality (inliers, rms, scale, rotation, overlap, the probability
that so many pairs agree by chance) and is **accepted only if it passes every gate** of
:class:`RegistrationGates`; otherwise ``accepted`` is False and ``reason`` says which gate
failed and by how much. astroalign returned a 97 degree rotation from 3 pairs on a cloudy
frame; here that is refused three times over (inliers, rms, significance).
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.spatial import cKDTree
from scipy.stats import poisson

from datas_pipeline.errors import RegistrationError
from datas_pipeline.registration.match import match_patterns, pair_stars
from datas_pipeline.registration.stars import find_control_stars
from datas_pipeline.registration.transforms import KINDS, Transform, fit_transform, min_points


@dataclass(frozen=True)
class RegistrationGates:
    """What a transform must satisfy to be used. Defaults suit dithered sequences of one field.

    Attributes
    ----------
    min_inliers : int
        Matched star pairs needed (at least 3 more than the model's parameters allow).
    max_rms_px : float
        Largest rms of the matched pairs' residuals (px).
    max_scale_change : float
        Largest relative scale difference, ``|scale - 1|``.
    max_rotation_deg : float or None
        Largest rotation (degrees, either sense); None allows any angle (meridian flips).
    allow_flip : bool
        Whether a mirrored frame may be registered.
    min_overlap : float
        Smallest fraction of the reference area the frame must cover.
    max_false_alarm : float
        Largest probability that this many pairs line up by chance, given the star density
        and the number of patterns compared.
    max_anisotropy : float
        Affine and polynomial fits: largest ``|sigma1 / sigma2 - 1|`` of the linear part (a
        real camera does not stretch one axis).
    max_distortion_px : float
        Polynomial fits: largest departure from the affine part over the frame (px).
    """

    min_inliers: int = 6
    max_rms_px: float = 0.7
    max_scale_change: float = 0.05
    max_rotation_deg: float | None = None
    allow_flip: bool = True
    min_overlap: float = 0.2
    max_false_alarm: float = 1e-6
    max_anisotropy: float = 0.02
    max_distortion_px: float = 25.0


@dataclass(frozen=True)
class RegistrationQuality:
    """Figures of merit of a registration (all px unless stated)."""

    reference_stars: int = 0
    frame_stars: int = 0
    inliers: int = 0
    rms_px: float = float("nan")
    scale: float = float("nan")
    rotation_deg: float = float("nan")
    flipped: bool = False
    dx: float = float("nan")
    dy: float = float("nan")
    overlap: float = 0.0
    false_alarm: float = 1.0


@dataclass(frozen=True)
class Registration:
    """The outcome for one frame: a transform and its quality, accepted or refused with a reason."""

    accepted: bool
    reason: str
    transform: Transform | None
    quality: RegistrationQuality
    ref_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)
    frame_index: np.ndarray = field(default_factory=lambda: np.zeros(0, int), repr=False)

    def require(self) -> Transform:
        """The transform, or :class:`RegistrationError` with the refusal's reason."""
        if not self.accepted or self.transform is None:
            raise RegistrationError(f"registration refused: {self.reason}")
        return self.transform

    def summary(self) -> dict:
        """A flat JSON-serialisable record: ``accepted``, ``reason`` and, when accepted, the
        quality figures (a refusal has only the star counts besides its reason)."""
        out = {"accepted": self.accepted, "reason": self.reason}
        quality = asdict(self.quality)
        if not self.accepted:
            quality = {k: quality[k] for k in ("reference_stars", "frame_stars")}
        out.update({k: (round(v, 6) if isinstance(v, float) else v) for k, v in quality.items()})
        return out


@dataclass(frozen=True)
class ReferenceStars:
    """The reference frame's control stars, prepared once for a whole sequence."""

    stars: np.ndarray
    shape: tuple[int, int]

    @property
    def center(self) -> tuple[float, float]:
        """The reference frame's centre (x, y) in px."""
        return ((self.shape[1] - 1) / 2.0, (self.shape[0] - 1) / 2.0)


def prepare_reference(
    image: np.ndarray | None = None,
    stars: np.ndarray | None = None,
    shape: tuple[int, int] | None = None,
    max_stars: int = 300,
) -> ReferenceStars:
    """Control stars of the reference, from its ``image`` or from a ready ``stars`` table.

    A table needs ``x``, ``y`` and ``flux`` columns (px, any flux unit) and the frame
    ``shape`` (ny, nx).
    """
    if stars is None:
        if image is None:
            raise RegistrationError("give the reference image or its star table")
        stars = find_control_stars(image, max_stars=max_stars)
        shape = tuple(np.shape(image))
    elif shape is None:
        raise RegistrationError("a reference star table needs the frame shape (ny, nx)")
    return ReferenceStars(_brightest_first(stars)[:max_stars], tuple(int(v) for v in shape))


def _brightest_first(stars: np.ndarray) -> np.ndarray:
    names = getattr(stars.dtype, "names", None) or ()
    for needed in ("x", "y", "flux"):
        if needed not in names:
            raise RegistrationError(f"star table lacks the {needed!r} column (has {', '.join(names)})")
    good = np.isfinite(stars["x"]) & np.isfinite(stars["y"]) & np.isfinite(stars["flux"])
    stars = stars[good]
    return stars[np.argsort(-stars["flux"], kind="stable")]


def _overlap(transform: Transform, ref_shape, frame_shape, n: int = 24) -> float:
    """Fraction of the reference frame whose mapped position lies inside the frame."""
    gy, gx = np.mgrid[0:n, 0:n]
    x = (gx + 0.5) * ref_shape[1] / n - 0.5
    y = (gy + 0.5) * ref_shape[0] / n - 0.5
    fx, fy = transform.apply(x.ravel(), y.ravel())
    inside = (fx >= -0.5) & (fx <= frame_shape[1] - 0.5) & (fy >= -0.5) & (fy <= frame_shape[0] - 0.5)
    return float(inside.mean())


def chance_match_probability(inliers_within: int, mapped_inside: int, frame_stars: int, frame_shape, radius: float,
                 proposals: int, model_points: int) -> float:
    """Probability that ``inliers_within`` pairs within ``radius`` px arise by chance.

    Each of the ``mapped_inside`` reference stars falls within ``radius`` of some frame star
    with probability ``density * pi * radius**2``; the pairs beyond the ``model_points`` that
    fix the model are a Poisson count; ``proposals`` tries multiply the chance.
    """
    density = frame_stars / float(frame_shape[0] * frame_shape[1])
    expected = mapped_inside * density * np.pi * radius**2
    extra = inliers_within - model_points
    if extra <= 0:
        return 1.0
    return float(min(1.0, max(proposals, 1) * poisson.sf(extra - 1, expected)))


def _anisotropy(transform: Transform) -> float:
    s = np.linalg.svd(transform.linear, compute_uv=False)
    return float(s[0] / max(s[1], 1e-12) - 1.0)


def _distortion(transform: Transform, shape) -> float:
    """Largest departure (px) of a polynomial from its affine part over a grid of the frame."""
    gy, gx = np.mgrid[0:9, 0:9]
    x, y = gx.ravel() * (shape[1] - 1) / 8.0, gy.ravel() * (shape[0] - 1) / 8.0
    px, py = transform.apply(x, y)
    m = transform.matrix
    return float(np.max(np.hypot(px - (m[0, 0] * x + m[0, 1] * y + m[0, 2]), py - (m[1, 0] * x + m[1, 1] * y + m[1, 2]))))


def _final_fit(kind, order, ref_xy, frame_xy, frame_tree, ri, fi, flip, tolerance):
    """Fit ``kind`` on the pairs, re-pair with it, clip outliers, refit: the sub-pixel solution."""
    model = fit_transform(kind, ref_xy[ri], frame_xy[fi], flip=flip, order=order)
    for _ in range(3):
        mapped = np.column_stack(model.apply(ref_xy[:, 0], ref_xy[:, 1]))
        ri, fi, dist = pair_stars(mapped, frame_tree, tolerance)
        if len(ri) < min_points(kind, order) + 1:
            break
        # A blended or mis-centred star should not pull the fit. Pair distances of a 2-D
        # Gaussian scatter follow a Rayleigh law with median 1.1774 sigma; faint stars scatter
        # more than bright ones, so only gross outliers go (5 sigma: 4e-6 of good pairs).
        sigma = np.median(dist) / 1.1774
        keep = dist <= max(5.0 * sigma, 0.05)
        if keep.sum() >= min_points(kind, order) + 1:
            ri, fi = ri[keep], fi[keep]
        model = fit_transform(kind, ref_xy[ri], frame_xy[fi], flip=flip, order=order)
    return model, ri, fi


def register_stars(
    reference: ReferenceStars,
    frame_stars: np.ndarray,
    frame_shape: tuple[int, int],
    kind: str = "similarity",
    order: int = 2,
    gates: RegistrationGates | None = None,
    tolerance_px: float = 1.5,
) -> Registration:
    """Register a frame, given its star table, on ``reference``.

    Parameters
    ----------
    reference : ReferenceStars
        From :func:`prepare_reference`.
    frame_stars : structured array
        The frame's stars with ``x, y, flux`` (px; any flux unit).
    frame_shape : (ny, nx)
        The frame's size in px.
    kind : {'shift', 'similarity', 'affine', 'polynomial'}
        Model fitted on the matched stars; matching itself is always by similarity.
    order : int
        Polynomial order (2 or 3) when ``kind='polynomial'``.
    gates : RegistrationGates
        Acceptance criteria; the defaults when omitted.
    tolerance_px : float
        Pairing radius for matched stars (px).

    Returns
    -------
    Registration, accepted or refused with the reason.
    """
    if kind not in KINDS:
        raise RegistrationError(f"unknown transform kind {kind!r}; choose one of {', '.join(KINDS)}")
    if kind == "polynomial" and order not in (2, 3):
        raise RegistrationError(f"polynomial order must be 2 or 3, not {order}")
    gates = gates or RegistrationGates()
    frame_stars = _brightest_first(frame_stars)
    n_ref, n_frame = len(reference.stars), len(frame_stars)
    base = RegistrationQuality(reference_stars=n_ref, frame_stars=n_frame)
    if n_ref < 3:
        return Registration(False, f"only {n_ref} stars in the reference (need at least 3)", None, base)
    if n_frame < 3:
        return Registration(False, f"only {n_frame} stars found in the frame (need at least 3): "
                            "clouds, lost focus, or a much shorter exposure?", None, base)
    ref_xy = np.column_stack([reference.stars["x"], reference.stars["y"]])
    frame_xy = np.column_stack([frame_stars["x"], frame_stars["y"]])
    size = float(np.hypot(*reference.shape))
    match = None
    # Few of the brightest stars may be shared when the overlap is partial: widen the pattern set.
    for n_pattern in (40, 80, 160):
        candidate = match_patterns(ref_xy, frame_xy, tolerance_px, reference.center, size, n_pattern)
        if candidate is not None and (match is None or len(candidate.ref_index) > len(match.ref_index)):
            match = candidate
        if match is not None and len(match.ref_index) >= max(gates.min_inliers, 12):
            break
        if n_pattern >= min(n_ref, n_frame):
            break
    if match is None:
        return Registration(False, "no star pattern in common with the reference", None, base)
    frame_tree = cKDTree(frame_xy)
    model, ri, fi = _final_fit(kind, order, ref_xy, frame_xy, frame_tree, match.ref_index,
                               match.frame_index, match.flip, tolerance_px)
    mapped = np.column_stack(model.apply(ref_xy[ri, 0], ref_xy[ri, 1]))
    residual = np.hypot(*(mapped - frame_xy[fi]).T)
    rms = float(np.sqrt(np.mean(residual**2))) if len(residual) else float("nan")
    all_mapped = np.column_stack(model.apply(ref_xy[:, 0], ref_xy[:, 1]))
    inside = int(((all_mapped[:, 0] >= 0) & (all_mapped[:, 0] < frame_shape[1]) & (all_mapped[:, 1] >= 0)
                  & (all_mapped[:, 1] < frame_shape[0])).sum())
    radius = float(np.clip(3.0 * rms, 0.3, tolerance_px)) if np.isfinite(rms) else tolerance_px
    n_params = {"shift": 1, "similarity": 2, "affine": 3}.get(kind, min_points(kind, order))
    false_alarm = chance_match_probability(int((residual <= radius).sum()), inside, n_frame, frame_shape, radius,
                               match.triangle_matches, max(n_params, 2))
    dx, dy = model.displacement(reference.center)
    quality = RegistrationQuality(
        reference_stars=n_ref, frame_stars=n_frame, inliers=len(ri), rms_px=rms, scale=model.scale,
        rotation_deg=model.rotation_deg, flipped=model.flipped, dx=dx, dy=dy,
        overlap=_overlap(model, reference.shape, frame_shape), false_alarm=false_alarm,
    )
    reason = _failed_gate(quality, gates, model, kind, order, frame_shape)
    if reason is not None:
        # A refused candidate is not a result: only the reason (which quotes the failing
        # figure) and the star counts go out, never its shift, rotation or scale.
        return Registration(False, reason, None, base)
    return Registration(True, "ok", model, quality, ri, fi)


def _failed_gate(q: RegistrationQuality, gates: RegistrationGates, model: Transform, kind: str,
                 order: int, shape) -> str | None:
    """The first gate the solution fails, as a sentence; None when it passes them all."""
    need = max(gates.min_inliers, min_points(kind, order) + 3)
    if q.inliers < need:
        return (f"only {q.inliers} stars matched the reference (need {need}): clouds, lost focus, "
                "or a different field?")
    if not q.rms_px <= gates.max_rms_px:
        return f"matched stars scatter by {q.rms_px:.2f} px rms (limit {gates.max_rms_px:.2f} px)"
    if abs(q.scale - 1.0) > gates.max_scale_change:
        return f"scale {q.scale:.4f} is outside 1 +/- {gates.max_scale_change:g}"
    if gates.max_rotation_deg is not None and abs(q.rotation_deg) > gates.max_rotation_deg:
        return f"rotation {q.rotation_deg:.2f} deg exceeds {gates.max_rotation_deg:g} deg"
    if q.flipped and not gates.allow_flip:
        return "the frame is mirrored and mirrored frames are not allowed"
    if kind in ("affine", "polynomial") and _anisotropy(model) > gates.max_anisotropy:
        return (f"the fit stretches one axis by {100 * _anisotropy(model):.2f} % "
                f"(limit {100 * gates.max_anisotropy:g} %)")
    if kind == "polynomial" and _distortion(model, shape) > gates.max_distortion_px:
        return (f"the polynomial departs {_distortion(model, shape):.1f} px from its affine part "
                f"(limit {gates.max_distortion_px:g} px)")
    if q.overlap < gates.min_overlap:
        return f"the frame covers {100 * q.overlap:.0f} % of the reference (need {100 * gates.min_overlap:.0f} %)"
    if q.false_alarm > gates.max_false_alarm:
        return (f"the match could be chance: probability {q.false_alarm:.1e} that {q.inliers} pairs "
                f"agree by accident (limit {gates.max_false_alarm:.0e})")
    return None


def register_image(
    reference: ReferenceStars,
    image: np.ndarray,
    kind: str = "similarity",
    order: int = 2,
    gates: RegistrationGates | None = None,
    tolerance_px: float = 1.5,
    max_stars: int = 300,
    mask: np.ndarray | None = None,
) -> Registration:
    """Find the control stars of ``image`` and register it on ``reference`` (see :func:`register_stars`)."""
    stars = find_control_stars(image, max_stars=max_stars, mask=mask)
    return register_stars(reference, stars, tuple(np.shape(image)), kind, order, gates, tolerance_px)


def choose_reference(star_tables: Sequence[np.ndarray]) -> int:
    """Index of the frame with the most control stars (ties: the sharpest)."""
    if not star_tables:
        raise RegistrationError("no frames to choose a reference from")
    scores = []
    for stars in star_tables:
        sharp = -float(np.median(stars["fwhm"])) if len(stars) and "fwhm" in stars.dtype.names else 0.0
        scores.append((len(stars), sharp))
    return max(range(len(scores)), key=scores.__getitem__)


def register_sequence(
    images: Iterable[np.ndarray],
    reference_index: int | str = 0,
    kind: str = "similarity",
    gates: RegistrationGates | None = None,
    max_stars: int = 300,
) -> tuple[int, list[Registration]]:
    """Register every frame of a sequence on one chosen reference (never on its neighbour).

    Registering each frame on the previous one lets errors add up along a drifting
    sequence; every frame here is matched to the same reference, so each error stands
    alone. ``reference_index='best'`` picks the frame with the most stars.

    Returns ``(reference_index, registrations)``, the reference's own entry being the identity.
    """
    images = list(images)
    tables = [find_control_stars(im, max_stars=max_stars) for im in images]
    if reference_index == "best":
        reference_index = choose_reference(tables)
    if not 0 <= int(reference_index) < len(images):
        raise RegistrationError(f"reference index {reference_index} is outside 0..{len(images) - 1}")
    ref_shape = tuple(np.shape(images[reference_index]))
    reference = prepare_reference(stars=tables[reference_index], shape=ref_shape, max_stars=max_stars)
    results = [register_stars(reference, t, tuple(np.shape(im)), kind, gates=gates)
               for t, im in zip(tables, images, strict=True)]
    return int(reference_index), results
