"""The calibration library of a site: its darks, flats and biases grouped into sets, and the
sets each light should use (:mod:`datas_pipeline.archive.calibration`), stored on the light."""
from __future__ import annotations

import dataclasses
from datetime import datetime

from datas_pipeline.archive.calibration import (
    CalibrationFile,
    CalibrationSet,
    calibrate_light,
    group_calibration,
)
from datas_pipeline.io.headers import FrameHeader

from observations.frame_header import header_from_cards
from observations.frames import Frame, ImageType
from sites.models import Site

_HEADER_FIELDS = {f.name for f in dataclasses.fields(FrameHeader)} - {"issues"}


def frame_header_of(record: dict) -> FrameHeader:
    """A stored normalised header (``Frame.header``) back as a :class:`FrameHeader`."""
    values = {k: record.get(k) for k in _HEADER_FIELDS}
    if values.get("date_obs"):
        values["date_obs"] = datetime.fromisoformat(values["date_obs"])
    if values.get("binning"):
        values["binning"] = tuple(values["binning"])
    return FrameHeader(**values)


def frame_location(frame: Frame) -> str:
    """Where the frame's file is: its path on the share, else its key in the frame storage."""
    located = getattr(frame, "archive_file", None)
    return located.path if located is not None else frame.storage_key


def calibration_library(site: Site) -> list[CalibrationSet]:
    """The site's calibration frames grouped into sets (one master each)."""
    frames = (Frame.objects.filter(site=site, image_type__in=[ImageType.DARK, ImageType.FLAT, ImageType.BIAS])
              .select_related("archive_file").order_by("pk"))
    files = []
    for frame in frames:
        bias_subtracted = frame.is_master and bool(header_from_cards(frame.fits_header or []).get("BIASSUB"))
        files.append(CalibrationFile(frame.pk, frame_location(frame), frame.image_type, frame_header_of(frame.header),
                                     (frame.height, frame.width), frame.is_master, bias_subtracted))
    return group_calibration(files)


def match_site_lights(site: Site, lights=None) -> list[CalibrationSet]:
    """Choose the calibration of every light of the site (or of ``lights``) and store it on
    ``Frame.calibration``; returns the library."""
    library = calibration_library(site)
    if lights is None:
        lights = Frame.objects.filter(site=site, image_type=ImageType.LIGHT)
    # Lights alike in everything the matcher reads (and taken the same night) get the same
    # answer: it is computed, and written, once per kind of light, not once per light.
    answers: dict[tuple, dict] = {}
    members: dict[tuple, list[int]] = {}
    for light in lights.only("id", "header", "width", "height"):
        info = frame_header_of(light.header)
        key = (info.camera, info.binning, info.gain, info.offset, info.temperature_c, info.exposure_s, info.filter,
               light.height, light.width, info.date_obs.date() if info.date_obs else None)
        if key not in answers:
            answers[key] = {"source": "archive library",
                            **calibrate_light(info, (light.height, light.width), library).as_dict()}
        members.setdefault(key, []).append(light.pk)
    for key, ids in members.items():
        for start in range(0, len(ids), 5000):
            Frame.objects.filter(pk__in=ids[start:start + 5000]).update(calibration=answers[key])
    return library
