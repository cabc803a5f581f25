"""The grade, calibration and photometry stages: measuring a light frame.

Grading judges a frame against its session (the same site, filter and pointing within a
night), using datas_pipeline.detection.grading, with a cloud check against the catalogue stars the WCS says
should be there. Calibration picks the masters (datas_pipeline.calibration.match) from the site's
master frames; photometry applies them and measures the target against catalogue stars
(datas_pipeline.photometry.field).
"""
from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import numpy as np
from datas_pipeline.calibration.masters import Master, Sections, calibrate_frame, read_master
from datas_pipeline.calibration.match import choose_masters
from datas_pipeline.catalog.reference import CatalogError, tycho2_cone
from datas_pipeline.detection.grading import FrameQuality, grade_session, measure_frame, quality_as_dict
from datas_pipeline.io.fits import Frame as ImageFrame
from datas_pipeline.io.headers import normalise_header
from datas_pipeline.photometry.aperture import NoiseModel
from datas_pipeline.photometry.differential import airmass as airmass_at
from datas_pipeline.photometry.field import TargetNotInField, in_frame, measure_target

from observations.frame_astrometry import frame_wcs, half_diagonal_deg
from observations.frame_header import header_from_cards, is_raw
from observations.frames import Frame, ImageType
from observations.states import FrameState
from observations.storage import local_copy
from targets.models import Target
from targets.sky import cone_search

# Catalogue stars expected on any clear frame: the brightest of the field.
CLOUD_CHECK_STARS = 30
SESSION_HOURS = 12
# Grade reasons (datas_pipeline.detection.grading) as short quality flags.
REASON_FLAGS = (("clouds", "clouds"), ("trailing", "trailing"), ("poor focus", "poor_focus"),
                ("bright sky", "bright_sky"), ("no usable stars", "no_stars"))
CATALOG_NAME = "Tycho-2 VT"
# Filters for which Tycho-2 VT comparison magnitudes are a fair stand-in.
VISUAL_BAND_FILTERS = {"v", "cv", "clear", "c", "l", "lum", "luminance", "g", "tg", "none", ""}


def luminance(data: np.ndarray) -> np.ndarray:
    """A 2-D image to measure: colour planes are averaged."""
    return data.mean(axis=0) if data.ndim == 3 else data


def _saturation(frame: Frame) -> float | None:
    header = header_from_cards(frame.fits_header)
    value = header.get("SATURATE", header.get("DATAMAX"))
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def catalog_for(frame: Frame) -> np.ndarray:
    """Reference stars around a solved frame (empty when no catalogue is installed)."""
    try:
        return tycho2_cone(frame.ra_deg, frame.dec_deg, half_diagonal_deg(frame) * 1.05)
    except CatalogError:
        return np.zeros(0, dtype=[("ra", "f8"), ("dec", "f8"), ("mag", "f4")])


def _session(frame: Frame) -> list[FrameQuality]:
    """Graded frames of the same site, filter and pointing within a night of this one."""
    names = {f.name for f in dataclasses.fields(FrameQuality)}
    window = timedelta(hours=SESSION_HOURS)
    peers = (Frame.objects.filter(site_id=frame.site_id, filter=frame.filter, image_type=ImageType.LIGHT,
                                  observed_at__gte=frame.observed_at - window,
                                  observed_at__lte=frame.observed_at + window)
             .exclude(pk=frame.pk).exclude(quality={})
             .exclude(state__in=[FrameState.RECEIVED, FrameState.HEADER_READ, FrameState.SOLVED]))
    if frame.target_id:
        peers = peers.filter(target_id=frame.target_id)
    elif frame.ra_deg is not None:
        peers = cone_search(peers, frame.ra_deg, frame.dec_deg, max(half_diagonal_deg(frame), 1e-3))
    qualities = []
    for stored in peers.values_list("quality", flat=True)[:200]:
        values = {k: stored.get(k) for k in names}
        if values["stars"] is None:
            continue
        qualities.append(FrameQuality(**{k: (np.nan if v is None and k not in ("file", "catalog_expected",
                                                                                "catalog_found") else v)
                                         for k, v in values.items()}))
    return qualities


def grade_frame(frame: Frame, image: np.ndarray) -> tuple[dict, str]:
    """The grade stage: measures, the session's verdict with reasons, flags, FWHM in arcsec."""
    if frame.image_type != ImageType.LIGHT:
        return {}, f"{frame.image_type or 'calibration'} frame: not graded"
    wcs = frame_wcs(frame)
    catalog_xy = None
    if wcs is not None:
        stars = catalog_for(frame)
        if len(stars):
            x, y = wcs.all_world2pix(stars["ra"], stars["dec"], 0)
            inside = in_frame(x, y, (frame.height, frame.width), margin=10)
            catalog_xy = np.column_stack([x[inside], y[inside]])[:CLOUD_CHECK_STARS]
    quality = measure_frame(image, file=frame.original_name or None, saturation=_saturation(frame),
                            catalog_xy=catalog_xy)
    session = _session(frame)
    grade = grade_session([*session, quality]).frames[-1]
    flags = [flag for prefix, flag in REASON_FLAGS if any(r.startswith(prefix) for r in grade.reasons)]
    stored = quality_as_dict(quality) | {"accepted": grade.accepted, "reasons": grade.reasons,
                                         "weight": round(grade.weight, 4), "rank": grade.rank,
                                         "session_frames": len(session) + 1}
    fwhm = quality.fwhm_px * frame.pixel_scale_arcsec if frame.pixel_scale_arcsec and np.isfinite(
        quality.fwhm_px) else None
    updates = {"quality": stored, "accepted": grade.accepted, "fwhm_arcsec": fwhm,
               "quality_flags": sorted(set(frame.quality_flags) | set(flags))}
    note = "" if len(session) >= 2 else f"session of {len(session) + 1} frame(s): judged on absolute limits mostly"
    return updates, note


def _master_candidates(frame: Frame) -> list[tuple[Frame, Master]]:
    """The site's masters as `Master` objects for matching (headers only, no pixels read)."""
    masters = Frame.objects.filter(network_id=frame.network_id, site_id=frame.site_id, is_master=True,
                                   image_type__in=[ImageType.BIAS, ImageType.DARK, ImageType.FLAT]).exclude(
        state__in=[FrameState.RECEIVED, FrameState.FAILED])
    out = []
    for master in masters.order_by("-observed_at")[:100]:
        placeholder = np.broadcast_to(np.float32(0.0), (master.height, master.width))
        out.append((master, Master(master.image_type, placeholder, header_from_cards(master.fits_header),
                                   _label(master))))
    return out


def _label(frame: Frame) -> Path:
    return Path(frame.original_name or f"frame-{frame.pk}.fits")


def match_calibration(frame: Frame) -> tuple[dict, str]:
    """The calibration stage: which masters a raw light needs, and why others were refused."""
    if frame.image_type != ImageType.LIGHT:
        return {}, f"{frame.image_type or 'calibration'} frame: not calibrated"
    header = header_from_cards(frame.fits_header)
    if not is_raw(header):
        return {"calibration": {"raw": False}}, "already calibrated at the site (CALSTAT or HISTORY says so)"
    candidates = _master_candidates(frame)
    sections = Sections.from_header(header)
    shape = (frame.height, frame.width)
    if sections.trim is not None:
        shape = np.broadcast_to(np.float32(0.0), shape)[sections.trim].shape
    choices = choose_masters(normalise_header(header), shape, [m for _, m in candidates])
    by_master = {id(m): f for f, m in candidates}
    record = {"raw": True, "masters": {}}
    for kind, choice in choices.items():
        entry = choice.as_dict()
        entry["frame_id"] = by_master[id(choice.master)].pk if choice.master is not None else None
        record["masters"][kind] = entry
    chosen = [k for k, e in record["masters"].items() if e["frame_id"]]
    flags = set(frame.quality_flags)
    if not chosen:
        flags.add("uncalibrated")
    note = f"masters: {', '.join(chosen)}" if chosen else f"no usable masters among {len(candidates)}"
    return {"calibration": record, "quality_flags": sorted(flags)}, note


def calibrated_image(frame: Frame, image: np.ndarray) -> np.ndarray:
    """``image`` with the chosen masters applied (unchanged when none were chosen)."""
    masters = (frame.calibration or {}).get("masters") or {}
    ids = {kind: entry.get("frame_id") for kind, entry in masters.items() if entry.get("frame_id")}
    if not ids:
        return image
    rows = {m.pk: m for m in Frame.objects.filter(pk__in=ids.values())}
    loaded = {kind: read_master(local_copy(rows[pk].storage_key, rows[pk].sha256))
              for kind, pk in ids.items() if pk in rows}
    header = header_from_cards(frame.fits_header)
    result = calibrate_frame(ImageFrame(data=image, header=header), bias=loaded.get("bias"), dark=loaded.get("dark"),
                             flat=loaded.get("flat"), sections=Sections.from_header(header))
    return result.data


def target_in_field(frame: Frame) -> Target | None:
    """The frame's target, else the network's active target nearest the centre inside the frame."""
    if frame.target_id:
        return frame.target
    wcs = frame_wcs(frame)
    if wcs is None:
        return None
    nearby = cone_search(Target.objects.filter(network_id=frame.network_id, is_active=True), frame.ra_deg,
                         frame.dec_deg, half_diagonal_deg(frame))
    for target in nearby[:20]:
        x, y = wcs.all_world2pix([target.ra_deg], [target.dec_deg], 0)
        if in_frame(x, y, (frame.height, frame.width))[0]:
            return target
    return None


def frame_airmass(frame: Frame, ra_deg: float, dec_deg: float) -> float | None:
    """Airmass at mid-exposure from the site (header coordinates first, the site's otherwise)."""
    info, site = frame.header, frame.site
    lat = info.get("site_lat_deg") if info.get("site_lat_deg") is not None else site.latitude
    lon = info.get("site_lon_deg") if info.get("site_lon_deg") is not None else site.longitude
    elevation = info.get("site_elevation_m") if info.get("site_elevation_m") is not None else site.elevation_m
    if frame.observed_at is None:
        return info.get("airmass")
    value = airmass_at(ra_deg, dec_deg, frame.observed_at, lat, lon, elevation or 0.0)
    return float(value) if np.isfinite(value) else None


def photometry_of_frame(frame: Frame, image: np.ndarray) -> tuple[dict, str]:
    """The photometry stage: the target's magnitude against catalogue stars in the field."""
    if frame.image_type != ImageType.LIGHT:
        return {}, f"{frame.image_type or 'calibration'} frame: no photometry"
    target = target_in_field(frame)
    if target is None:
        return {}, "no target of the network in the field"
    info = frame.header
    noise = NoiseModel(gain=info.get("electrons_per_adu") or 1.0, read_noise=info.get("read_noise_e") or 0.0,
                       exposure_s=frame.exposure_s or 0.0)
    fwhm = (frame.quality or {}).get("fwhm_px") or 3.0
    data = calibrated_image(frame, image)
    try:
        measured = measure_target(data, frame_wcs(frame), target.ra_deg, target.dec_deg, catalog_for(frame),
                                  fwhm_px=fwhm, noise=noise, saturation=_saturation(frame))
    except TargetNotInField as exc:
        return {"target": target}, str(exc)
    record = measured.as_dict() | {"catalog": CATALOG_NAME, "filter": frame.filter or None,
                                   "airmass": frame_airmass(frame, target.ra_deg, target.dec_deg),
                                   "calibrated": data is not image}
    flags = set(frame.quality_flags) | set(measured.flags)
    if (frame.filter or "").strip().lower() not in VISUAL_BAND_FILTERS:
        flags.add("comparison_band_mismatch")
    return {"target": target, "photometry": record, "quality_flags": sorted(flags)}, ""

