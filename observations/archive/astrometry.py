"""A catalogued light's sky position: from its WCS, never from OBJECT or the file name.

``--solve missing`` (the default): a WCS in the header is used when Tycho-2 confirms it
(or has too few stars in the field to judge); a light without one, or with one the
catalogue contradicts, goes through the frame pipeline's solve stage
(:func:`observations.frame_astrometry.solve_frame`): its WCS is propagated from a solved
frame of the same pointing when there is one, else plate solved with hints. ``always``
solves every light; ``never`` reads no pixels at all. When no WCS can be had, the header's
pointing is recorded instead and ``astrometry.method`` says so.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.wcs import WCS
from datas_pipeline.archive.wcscheck import check_wcs
from datas_pipeline.astrometry.solve import SolveError, describe_wcs
from datas_pipeline.detection.extract import extract_sources
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import read_frame
from datas_pipeline.io.headers import header_celestial_wcs

from observations.frame_astrometry import REFERENCE_STARS, SOLVE_SOURCES, footprint, solve_frame, wcs_to_dict
from observations.frame_header import header_from_cards
from observations.frame_measure import grade_frame, luminance
from observations.frames import Frame, WcsSource


def any_header_wcs(header: fits.Header) -> WCS | None:
    """The header's celestial WCS, whoever wrote it (None when absent or malformed)."""
    if "CTYPE1" not in header or "CTYPE2" not in header:
        return None
    wcs = header_celestial_wcs(header, require_ra=True)
    if wcs is None:
        return None
    return wcs


def _wcs_updates(frame: Frame, wcs: WCS, source: str, astrometry: dict, stars_xy: np.ndarray | None) -> dict:
    wcs.pixel_shape = (frame.width, frame.height)
    described = describe_wcs(wcs, (frame.height, frame.width))
    return {"ra_deg": described["ra_deg"] % 360.0, "dec_deg": described["dec_deg"],
            "pixel_scale_arcsec": described["pixel_scale_arcsec"], "rotation_deg": described["rotation_deg"],
            "flipped": described["flipped"], "footprint": footprint(wcs, frame.width, frame.height),
            "wcs_source": source, "wcs_header": wcs_to_dict(wcs), "wcs_reference": None, "astrometry": astrometry,
            "reference_stars": np.round(stars_xy[:REFERENCE_STARS], 3).tolist() if stars_xy is not None else []}


def pointing_fallback(frame: Frame, why: str) -> dict:
    """No WCS: the header's mount pointing stands in, and the frame says so."""
    ra, dec = (frame.header or {}).get("ra_deg"), (frame.header or {}).get("dec_deg")
    if ra is None or dec is None:
        return {"astrometry": {"method": "none", "message": f"{why}; the header has no pointing either: "
                                                            f"the frame has no sky position"}}
    return {"ra_deg": float(ra) % 360.0, "dec_deg": float(dec), "wcs_source": "",
            "astrometry": {"method": "header pointing", "message": f"{why}; fell back to the header's mount "
                                                                 f"pointing (RA/DEC keywords), not a WCS"}}


def locate_light(frame: Frame, path: Path, mode: str) -> tuple[dict, np.ndarray | None]:
    """Astrometry updates for a saved light frame, and its pixels when they were read."""
    header = header_from_cards(frame.fits_header or [])
    wcs = any_header_wcs(header)
    if mode == "never":
        if wcs is not None:
            return _wcs_updates(frame, wcs, WcsSource.HEADER, {"method": "header", "check": "not checked "
                                                               "(--solve never reads no pixels)"}, None), None
        return pointing_fallback(frame, "no WCS in the header and solving is off (--solve never)"), None
    image = luminance(read_frame(path).data)
    why = ""
    if wcs is not None and mode == "missing":
        sources = extract_sources(image, max_sources=SOLVE_SOURCES, fit_profiles=False, fast=True)
        xy = np.column_stack([sources["x"], sources["y"]]) if len(sources) else np.zeros((0, 2))
        verdict = check_wcs(wcs, (frame.height, frame.width), xy)
        if verdict.ok:
            return _wcs_updates(frame, wcs, WcsSource.HEADER, {"method": "header", "check": verdict.as_dict()},
                                xy), image
        why = f"the header WCS was {verdict.message}; "
    # The solve stage trusts PLTSOLVD; here the header WCS was judged above, so it must not.
    frame.fits_header = [card for card in frame.fits_header or [] if card[0] != "PLTSOLVD"]
    try:
        updates, note = solve_frame(frame, image)
    except (PipelineError, SolveError) as exc:
        return pointing_fallback(frame, f"{why}no WCS found ({exc})"), image
    astrometry = dict(updates.get("astrometry") or {})
    if why or note:
        astrometry["note"] = (why + note).strip("; ")
    updates["astrometry"] = astrometry
    return updates, image


def locate_and_grade(frame: Frame, path: Path, mode: str, grade: bool = True) -> dict:
    """Astrometry, then (when the pixels were read) the grade stage's measures; saved to the frame."""
    try:
        updates, image = locate_light(frame, path, mode)
    except PipelineError as exc:  # unreadable pixels, a blank frame: the header pointing stands in
        updates, image = pointing_fallback(frame, f"no astrometry ({exc})"), None
    for name, value in updates.items():
        setattr(frame, name, value)
    if grade and image is not None and frame.wcs_header:
        try:
            graded, _ = grade_frame(frame, image)
            updates.update(graded)
        except PipelineError as exc:
            updates["notes"] = {**(frame.notes or {}), "grade": f"not graded: {exc}"}
    Frame.objects.filter(pk=frame.pk).update(**updates)
    return updates
