"""Plate solving of small fields against Tycho-2 with a pointing and scale hint.

astrometry.net's Tycho-2 index files stop at 22' skymarks, and a 10-30' field holds only a
handful of their stars: solve-field finds no quad and gives up. With a hint (the mount's
pointing and the plate scale from focal length and pixel size) a handful is enough:

1. Project the Tycho-2 stars within the search radius onto the tangent plane at the hinted
   centre, in hinted pixels (east left, north up).
2. Match the frame's brightest stars to them with the project's triangle matcher
   (:func:`datas_pipeline.registration.match.match_patterns`, proposals limited to the
   hinted scale range); any rotation and a mirrored camera are allowed.
3. Fit a conformal TAN WCS (shift, rotation, scale, parity) to the matched pairs, re-centre
   the tangent point on the frame, re-pair every catalogue star in the field with every
   detected star, and refit.
4. Verify: enough matched stars, a small rms (arcsec), a scale within the hint's tolerance,
   and a low probability that so many pairs line up by chance
   (:func:`datas_pipeline.registration.register.chance_match_probability`).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from datas_pipeline.astrometry.solve import SolveHints, SolveResult, describe_wcs
from datas_pipeline.catalog.reference import tycho2_cone
from datas_pipeline.errors import NoStarsError
from datas_pipeline.registration.match import match_patterns, pair_stars
from datas_pipeline.registration.register import chance_match_probability
from datas_pipeline.registration.transforms import fit_transform

SOLVER_NAME = "tycho2-hinted"


@dataclass(frozen=True)
class CatalogGates:
    """What a catalogue solution must satisfy.

    ``min_matched`` catalogue stars paired with detected stars, their ``max_rms_px`` scatter
    (px), and ``max_false_alarm``, the largest chance that so many pairs agree by accident.
    """

    min_matched: int = 4
    max_rms_px: float = 1.0
    max_false_alarm: float = 1e-4
    pair_radius_px: float = 2.0


def tangent_plane(ra_deg: np.ndarray, dec_deg: np.ndarray, ra0_deg: float, dec0_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic (TAN) standard coordinates xi (east), eta (north) in degrees about (ra0, dec0)."""
    ra, dec = np.radians(ra_deg), np.radians(dec_deg)
    ra0, dec0 = math.radians(ra0_deg), math.radians(dec0_deg)
    cos_d, d_ra = np.cos(dec), ra - ra0
    denominator = np.sin(dec) * math.sin(dec0) + cos_d * math.cos(dec0) * np.cos(d_ra)
    xi = cos_d * np.sin(d_ra) / denominator
    eta = (np.sin(dec) * math.cos(dec0) - cos_d * math.sin(dec0) * np.cos(d_ra)) / denominator
    return np.degrees(xi), np.degrees(eta)


def from_tangent_plane(xi_deg: float, eta_deg: float, ra0_deg: float, dec0_deg: float) -> tuple[float, float]:
    """(RA, Dec) in degrees of standard coordinates (xi, eta) in degrees about (ra0, dec0)."""
    xi, eta = math.radians(xi_deg), math.radians(eta_deg)
    dec0 = math.radians(dec0_deg)
    rho = math.hypot(xi, eta)
    if rho == 0.0:
        return ra0_deg % 360.0, dec0_deg
    c = math.atan(rho)
    dec = math.asin(math.cos(c) * math.sin(dec0) + eta * math.sin(c) * math.cos(dec0) / rho)
    ra = math.radians(ra0_deg) + math.atan2(xi * math.sin(c),
                                            rho * math.cos(dec0) * math.cos(c) - eta * math.sin(dec0) * math.sin(c))
    return math.degrees(ra) % 360.0, math.degrees(dec)


def fit_tan_wcs(frame_xy: np.ndarray, ra_deg: np.ndarray, dec_deg: np.ndarray, shape: tuple[int, int],
                flip: bool, ra0: float, dec0: float) -> WCS:
    """A conformal TAN WCS taking 0-based frame pixels ``frame_xy`` (n, 2) to (RA, Dec) degrees.

    The tangent point starts at (ra0, dec0) and is moved to the sky position of the frame
    centre until it stays put, so the linear fit is made where the projection is exact.
    ``flip`` says whether the camera image is mirrored (east to the right with north up).
    """
    centre = np.array([(shape[1] - 1) / 2.0, (shape[0] - 1) / 2.0])
    for _ in range(4):
        xi, eta = tangent_plane(ra_deg, dec_deg, ra0, dec0)
        # Pixels map onto (-xi, eta): an unmirrored camera is then a rotation and a scale.
        model = fit_transform("similarity", frame_xy, np.column_stack([-xi, eta]), flip=flip)
        cx, cy = model.apply(centre[:1], centre[1:])
        moved = math.hypot(cx[0], cy[0])
        ra0, dec0 = from_tangent_plane(-float(cx[0]), float(cy[0]), ra0, dec0)
        if moved < 1e-9:
            break
    xi, eta = tangent_plane(ra_deg, dec_deg, ra0, dec0)
    model = fit_transform("similarity", frame_xy, np.column_stack([-xi, eta]), flip=flip)
    cd = np.diag([-1.0, 1.0]) @ model.linear
    offset = np.diag([-1.0, 1.0]) @ model.matrix[:2, 2]
    # (xi, eta) = cd p + offset = cd (p - p0), so the tangent point sits at p0 = -cd^-1 offset.
    p0 = -np.linalg.solve(cd, offset)
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [ra0 % 360.0, dec0]
    wcs.wcs.crpix = [p0[0] + 1.0, p0[1] + 1.0]
    wcs.wcs.cd = cd
    wcs.pixel_shape = (shape[1], shape[0])
    wcs.wcs.set()
    return wcs


def _pixel_catalog(catalog: np.ndarray, ra0: float, dec0: float, scale_arcsec: float,
                   centre: tuple[float, float]) -> np.ndarray:
    """Catalogue positions in hinted pixels: east to the left, north up, centred on the frame."""
    xi, eta = tangent_plane(catalog["ra"], catalog["dec"], ra0, dec0)
    per_px = scale_arcsec / 3600.0
    return np.column_stack([centre[0] - xi / per_px, centre[1] + eta / per_px])


def _verify(wcs: WCS, catalog: np.ndarray, frame_xy: np.ndarray, shape, gates: CatalogGates, flip: bool,
            proposals: int) -> tuple[WCS, dict]:
    """Re-pair every catalogue star in the field with every detected star, refit, and measure."""
    tree = cKDTree(frame_xy)
    radius = gates.pair_radius_px
    ci = fi = np.zeros(0, int)
    for _ in range(3):
        x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
        mapped = np.column_stack([x, y])
        ci, fi, _ = pair_stars(mapped, tree, radius)
        if len(ci) < 3:
            break
        wcs = fit_tan_wcs(frame_xy[fi], catalog["ra"][ci], catalog["dec"][ci], shape, flip, *wcs.wcs.crval)
    x, y = wcs.all_world2pix(catalog["ra"], catalog["dec"], 0)
    inside = int(((x >= 0) & (x <= shape[1] - 1) & (y >= 0) & (y <= shape[0] - 1)).sum())
    residual = np.hypot(x[ci] - frame_xy[fi, 0], y[ci] - frame_xy[fi, 1]) if len(ci) else np.zeros(0)
    rms = float(np.sqrt(np.mean(residual**2))) if len(residual) else float("nan")
    within = float(np.clip(3.0 * rms, 0.3, radius)) if np.isfinite(rms) else radius
    false_alarm = chance_match_probability(int((residual <= within).sum()), inside, len(frame_xy), shape, within,
                                           proposals, 2)
    return wcs, {"matched": len(ci), "in_field": inside, "rms_px": rms, "false_alarm": false_alarm}


def _refusal(quality: dict, gates: CatalogGates, scale: float, hints: SolveHints) -> str | None:
    if quality["matched"] < gates.min_matched:
        return f"only {quality['matched']} Tycho-2 stars matched (need {gates.min_matched})"
    if not quality["rms_px"] <= gates.max_rms_px:
        return f"matched stars scatter by {quality['rms_px']:.2f} px rms (limit {gates.max_rms_px:g} px)"
    if abs(scale / hints.scale_arcsec - 1.0) > hints.scale_tolerance:
        return f"scale {scale:.3f}\"/px is outside the hint {hints.scale_arcsec:.3f}\"/px +/- {hints.scale_tolerance:.0%}"
    if quality["false_alarm"] > gates.max_false_alarm:
        return (f"the match could be chance: probability {quality['false_alarm']:.1e} "
                f"(limit {gates.max_false_alarm:.0e})")
    return None


def solve_with_catalog(
    x: np.ndarray, y: np.ndarray, flux: np.ndarray, shape: tuple[int, int], hints: SolveHints,
    catalog: np.ndarray | None = None, gates: CatalogGates = CatalogGates(),
) -> SolveResult:
    """Solve a star list (0-based px, any flux unit) of a frame of ``shape`` (ny, nx) against Tycho-2.

    ``hints`` must give the pointing (degrees; ``radius_deg`` its uncertainty) and the pixel
    scale (arcsec/px, ``scale_tolerance`` fractional). ``catalog`` replaces Tycho-2 with a
    table of ``ra``, ``dec``, ``mag`` (degrees, brightest first) covering the search area.
    A field that is not solved is a normal result (``solved=False`` and the reason).
    """
    started = time.monotonic()
    if hints.ra_deg is None or hints.dec_deg is None or not hints.scale_arcsec:
        return SolveResult(False, 0.0, SOLVER_NAME, message="needs a pointing and a pixel-scale hint")
    if len(x) < 3:
        raise NoStarsError(f"only {len(x)} stars to solve with; at least 3 are needed")
    ny, nx = shape
    centre = ((nx - 1) / 2.0, (ny - 1) / 2.0)
    half_diagonal_deg = 0.5 * math.hypot(nx, ny) * hints.scale_arcsec * (1 + hints.scale_tolerance) / 3600.0
    search_deg = hints.radius_deg + half_diagonal_deg
    if catalog is None:
        catalog = tycho2_cone(hints.ra_deg, hints.dec_deg, search_deg)
    order = np.argsort(-np.asarray(flux), kind="stable")
    frame_xy = np.column_stack([np.asarray(x, float), np.asarray(y, float)])[order]

    def fail(message: str) -> SolveResult:
        return SolveResult(False, time.monotonic() - started, SOLVER_NAME, message=message,
                           extras={"catalog_stars": len(catalog)})

    if len(catalog) < 3:
        return fail(f"only {len(catalog)} Tycho-2 stars within {search_deg:.2f} deg of the hint")
    catalog_xy = _pixel_catalog(catalog, hints.ra_deg, hints.dec_deg, hints.scale_arcsec, centre)
    field_area_deg2 = nx * ny * (hints.scale_arcsec / 3600.0) ** 2
    expected = len(catalog) * field_area_deg2 / (math.pi * search_deg**2)
    low, high = 1.0 / (1 + hints.scale_tolerance), 1.0 / (1 - min(hints.scale_tolerance, 0.9))
    best_reason = "no star pattern in common with Tycho-2 around the hint"
    # The frame's brightest stars should be the catalogue's; how many to take depends on
    # saturation and colour, so try a tight and a loose selection.
    for factor in (1.5, 3.0, 6.0):
        n_frame = int(min(len(frame_xy), max(6, math.ceil(factor * expected) + 2)))
        match = match_patterns(catalog_xy, frame_xy[:n_frame], gates.pair_radius_px, centre, math.hypot(nx, ny),
                               n_pattern_stars=len(catalog_xy), max_hypotheses=20, scale_range=(low, high))
        if match is None or len(match.ref_index) < 3:
            continue
        wcs = fit_tan_wcs(frame_xy[match.frame_index], catalog["ra"][match.ref_index],
                          catalog["dec"][match.ref_index], shape, match.flip, hints.ra_deg, hints.dec_deg)
        wcs, quality = _verify(wcs, catalog, frame_xy, shape, gates, match.flip, match.triangle_matches)
        description = describe_wcs(wcs, shape)
        reason = _refusal(quality, gates, description["pixel_scale_arcsec"], hints)
        if reason is None:
            return SolveResult(True, time.monotonic() - started, SOLVER_NAME, wcs=wcs, matched=quality["matched"],
                               rms_arcsec=quality["rms_px"] * description["pixel_scale_arcsec"], index="tycho2",
                               message="solved",
                               extras={"false_alarm": quality["false_alarm"], "in_field": quality["in_field"],
                                       "catalog_stars": len(catalog)}, **description)
        best_reason = reason
        if n_frame >= len(frame_xy):
            break
    return fail(best_reason)
