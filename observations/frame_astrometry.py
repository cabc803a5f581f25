"""The solve stage: a frame's WCS from the cheapest trustworthy source, and what follows from it.

In order: a WCS the site already solved (``PLTSOLVD = T`` in the header); a WCS propagated
from a solved frame of the same pointing (same site and set-up, pointing within a quarter
of the field) through a gated star match, which takes milliseconds; a plate solve by the
``auto`` solver (Tycho-2 matching around the header's pointing and the optics' pixel scale,
then solve-field) within the CPU limit and the wall-clock backstop of
:mod:`datas_pipeline.astrometry.limits`. The first solve
of each pointing pays for the solver; every later frame of the pointing propagates.
"""
from __future__ import annotations

import math
import warnings
from datetime import timedelta

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS, FITSFixedWarning
from datas_pipeline.astrometry.limits import wall_budget
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.errors import PipelineError, RegistrationError
from datas_pipeline.io.headers import header_celestial_wcs
from django.conf import settings
from django.utils import timezone

from observations.frame_header import header_from_cards
from observations.frames import Frame, ImageType, WcsSource
from observations.states import FrameState
from targets.sky import angular_separation_deg, cone_search

# Star positions kept per solved frame for later frames to match against.
REFERENCE_STARS = 150
# Frames of one pointing: header pointing within this share of the reference's field width.
SAME_POINTING_FRACTION = 0.25
SOLVE_SOURCES = 200


class FrameNotSolved(PipelineError):
    """No WCS could be found for a frame; the message gives the solver's reason and hints."""


class SolveInProgress(Exception):
    """An earlier frame of the same pointing is being plate solved: retry soon and propagate.

    Without this, frames of a new pointing reaching several workers at once would each pay
    for a full solve; with it, the oldest one solves and the others wait a few seconds.
    """


def wcs_from_dict(cards: dict, width: int | None = None, height: int | None = None) -> WCS:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(fits.Header(cards)).celestial
    if width and height:
        wcs.pixel_shape = (width, height)
    return wcs


def wcs_to_dict(wcs: WCS) -> dict:
    """A WCS as JSON-ready FITS keywords (SIP terms included)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        header = wcs.to_header(relax=True)
    return {key: header[key] for key in header if key not in ("COMMENT", "HISTORY", "")}


def frame_wcs(frame: Frame) -> WCS | None:
    return wcs_from_dict(frame.wcs_header, frame.width, frame.height) if frame.wcs_header else None


def footprint(wcs: WCS, width: int, height: int) -> list[list[float]]:
    """Sky corners of the frame (outer pixel edges), degrees, counter-clockwise in pixels."""
    x = np.array([-0.5, width - 0.5, width - 0.5, -0.5])
    y = np.array([-0.5, -0.5, height - 0.5, height - 0.5])
    ra, dec = wcs.all_pix2world(x, y, 0)
    return [[round(float(r) % 360.0, 7), round(float(d), 7)] for r, d in zip(ra, dec, strict=True)]


def half_diagonal_deg(frame: Frame) -> float:
    scale = frame.pixel_scale_arcsec or 1.0
    return 0.5 * math.hypot(frame.width or 0, frame.height or 0) * scale / 3600.0


def header_wcs(header: fits.Header) -> WCS | None:
    """The header's WCS when the site says it solved it (PLTSOLVD = T) and it is celestial."""
    if header.get("PLTSOLVD") is not True:
        return None
    return header_celestial_wcs(header, require_ra=True)


def hint_scale_arcsec(frame: Frame) -> float | None:
    """Pixel scale (arcsec/px) from the header's optics, else the site's, times the binning."""
    info = frame.header
    if info.get("pixel_size_um") and info.get("focal_length_mm"):
        return 206.264806 * info["pixel_size_um"] / info["focal_length_mm"]
    scale = frame.site.pixel_scale_arcsec
    if scale is None:
        return None
    binning = (info.get("binning") or [1, 1])[0] or 1
    return scale * binning


def find_reference(frame: Frame) -> Frame | None:
    """A frame of the same site and set-up, solved (not propagated), at the same pointing."""
    ra, dec = frame.header.get("ra_deg"), frame.header.get("dec_deg")
    if ra is None or dec is None:
        return None
    candidates = (Frame.objects.filter(network_id=frame.network_id, site_id=frame.site_id, width=frame.width,
                                       height=frame.height, wcs_source__in=[WcsSource.SOLVED, WcsSource.HEADER])
                  .exclude(pk=frame.pk).exclude(reference_stars=[]))
    scale = hint_scale_arcsec(frame) or 3.0
    reach = min(5.0, SAME_POINTING_FRACTION * max(frame.width, frame.height) * scale / 3600.0 * 2.0)
    for candidate in cone_search(candidates, ra, dec, reach)[:5]:
        width_deg = max(candidate.width, candidate.height) * (candidate.pixel_scale_arcsec or scale) / 3600.0
        if candidate.separation_deg <= SAME_POINTING_FRACTION * width_deg:
            return candidate
    return None


def solve_wall_limit_s() -> float:
    """The wall-clock limit of one plate solve (s): the solver module's backstop for the CPU limit."""
    return wall_budget(settings.DATAS_SOLVE_CPU_LIMIT_S)


def pointing_being_solved(frame: Frame) -> Frame | None:
    """An older frame of the same site, set-up and pointing that a worker is plate solving now."""
    ra, dec = frame.header.get("ra_deg"), frame.header.get("dec_deg")
    if ra is None or dec is None:
        return None
    recent = timezone.now() - timedelta(seconds=solve_wall_limit_s())
    busy = Frame.objects.filter(network_id=frame.network_id, site_id=frame.site_id, width=frame.width,
                                height=frame.height, state=FrameState.HEADER_READ, active_stage="solve",
                                active_since__gte=recent, pk__lt=frame.pk).only("id", "header")
    width_deg = max(frame.width, frame.height) * (hint_scale_arcsec(frame) or 3.0) / 3600.0
    for other in busy[:20]:
        other_ra, other_dec = other.header.get("ra_deg"), other.header.get("dec_deg")
        if other_ra is not None and other_dec is not None and \
                angular_separation_deg(ra, dec, other_ra, other_dec) <= SAME_POINTING_FRACTION * width_deg:
            return other
    return None


def solve_frame(frame: Frame, image: np.ndarray) -> tuple[dict, str]:
    """The solve stage on a light: (frame updates, note). Other frame types are skipped.

    Raises
    ------
    FrameNotSolved
        Neither propagation nor the solver found a WCS.
    """
    if frame.image_type != ImageType.LIGHT:
        return {}, f"{frame.image_type or 'calibration'} frame: no astrometry"
    from datas_pipeline.astrometry.solve import SolveHints, describe_wcs, propagate_wcs, solve_image

    header = header_from_cards(frame.fits_header)
    shape = (frame.height, frame.width)
    solved = header_wcs(header)
    sources = extract_sources(image, max_sources=SOLVE_SOURCES, fit_profiles=False, fast=True)
    xy = np.column_stack([sources["x"], sources["y"]]) if len(sources) else np.zeros((0, 2))
    note, reference, astrometry = "", None, {}
    if solved is not None:
        source, astrometry = WcsSource.HEADER, {"method": "header", "keyword": "PLTSOLVD"}
    else:
        reference = find_reference(frame)
        if reference is not None:
            try:
                propagated = propagate_wcs(frame_wcs(reference), np.asarray(reference.reference_stars), xy,
                                           frame_shape=shape)
                solved, source = propagated.wcs, WcsSource.PROPAGATED
                astrometry = {"method": "propagated", "reference_frame": reference.pk,
                              "registration": propagated.registration.summary(),
                              "seconds": round(propagated.seconds, 4)}
            except RegistrationError as exc:
                note = f"propagation from frame {reference.pk} refused ({exc}); plate solved instead"
                reference = None
    if solved is None and reference is None and not note:
        busy = pointing_being_solved(frame)
        if busy is not None:
            raise SolveInProgress(f"frame {busy.pk} of the same pointing is being plate solved")
    if solved is None:
        scale = hint_scale_arcsec(frame)
        hints = SolveHints(ra_deg=frame.header.get("ra_deg"), dec_deg=frame.header.get("dec_deg"),
                           radius_deg=settings.DATAS_SOLVE_RADIUS_DEG, scale_arcsec=scale)
        result = solve_image(image, hints, solver="auto", cpu_limit_s=settings.DATAS_SOLVE_CPU_LIMIT_S,
                             timeout_s=solve_wall_limit_s(), sources=sources)
        if not result.solved:
            said = ", ".join(f"{k} {v:g}" for k, v in (("ra", hints.ra_deg), ("dec", hints.dec_deg),
                                                        ("scale", scale)) if v is not None) or "no hints"
            raise FrameNotSolved(f"plate solve found no WCS ({result.message}; hints: {said}; "
                                 f"{len(sources)} stars)")
        solved, source, astrometry = result.wcs, WcsSource.SOLVED, result.as_dict() | {"method": "solved"}
    solved.pixel_shape = (frame.width, frame.height)
    described = describe_wcs(solved, shape)
    updates = {
        "ra_deg": described["ra_deg"] % 360.0, "dec_deg": described["dec_deg"],
        "pixel_scale_arcsec": described["pixel_scale_arcsec"], "rotation_deg": described["rotation_deg"],
        "flipped": described["flipped"], "footprint": footprint(solved, frame.width, frame.height),
        "wcs_source": source, "wcs_header": wcs_to_dict(solved), "wcs_reference": reference,
        "astrometry": astrometry,
        "reference_stars": np.round(xy[:REFERENCE_STARS], 3).tolist() if source != WcsSource.PROPAGATED else [],
    }
    return updates, note
