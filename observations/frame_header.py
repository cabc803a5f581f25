"""From a FITS header to a frame's columns, and whether the header is sane enough to keep.

Shared by the upload (which refuses a frame whose header cannot be used) and the pipeline's
header stage (which records it), so both judge a header alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from astropy.io import fits
from datas_pipeline.io.fitscheck import FitsSummary
from datas_pipeline.io.headers import FrameHeader
from django.conf import settings
from django.utils import timezone

# Digital detectors (and FITS) post-date this; an earlier DATE-OBS is an unset camera clock.
EARLIEST_OBSERVATION = datetime(1980, 1, 1, tzinfo=UTC)
# Header card values JSON can hold; anything else (Undefined) is stored as None.
_JSON_TYPES = (bool, int, float, str)


@dataclass
class HeaderVerdict:
    """Problems that make a frame unusable (``errors``) and ones merely worth knowing."""

    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def judge_header(info: FrameHeader, now: datetime | None = None) -> HeaderVerdict:
    """Whether a normalised header can be used: a time, an exposure, a known frame type.

    Everything else the header lacks (filter, pointing, gain, ...) is a warning: the
    pipeline works around it and says so.
    """
    now = now or timezone.now()
    verdict = HeaderVerdict()
    by_field: dict[str, list[str]] = {}
    for issue in info.issues:
        by_field.setdefault(issue.field, []).append(issue.message)
    if info.date_obs is None:
        said = "; ".join(by_field.pop("date_obs", [])) or "no time of observation"
        verdict.errors.append(f"the header has no usable time of observation ({said}); "
                              f"write DATE-OBS as UTC, e.g. 2026-11-21T20:15:03")
    else:
        skew = timedelta(seconds=settings.DATAS_CLOCK_SKEW_SECONDS)
        if info.date_obs > now + skew:
            verdict.errors.append(f"DATE-OBS {info.date_obs.isoformat()} is in the future: is the camera "
                                  f"computer's clock right, and is DATE-OBS in UTC?")
        elif info.date_obs < EARLIEST_OBSERVATION:
            verdict.errors.append(f"DATE-OBS {info.date_obs.date()} is before 1980: the camera clock was not set")
    if info.image_type is None and "image_type" in by_field and any(
            "is not light" in m for m in by_field["image_type"]):
        verdict.errors.append(by_field.pop("image_type")[0] + " (IMAGETYP must say light, dark, flat or bias)")
    if info.image_type != "bias" and info.exposure_s is None:
        said = "; ".join(by_field.pop("exposure_s", [])) or "no exposure keyword"
        verdict.errors.append(f"the header has no usable exposure time ({said}); write EXPTIME in seconds")
    for messages in by_field.values():  # what is left did not make the frame unusable
        verdict.warnings.extend(messages)
    return verdict


def header_cards(header: fits.Header) -> list[list]:
    """The header as ``[[key, value, comment], ...]`` (JSON-ready, order and repeats kept)."""
    cards = []
    for card in header.cards:
        value = card.value
        if not isinstance(value, _JSON_TYPES) or (isinstance(value, float) and not math.isfinite(value)):
            value = None if not isinstance(value, float) else str(value)
        cards.append([card.keyword, value, card.comment])
    return cards


def header_from_cards(cards: list) -> fits.Header:
    """Rebuild a header from `header_cards` output."""
    header = fits.Header()
    for keyword, value, comment in cards:
        if keyword == "COMMENT":
            header.add_comment(value or "")
        elif keyword == "HISTORY":
            header.add_history(value or "")
        elif keyword:
            header.append(fits.Card(keyword, fits.card.UNDEFINED if value is None else value, comment), end=True)
    return header


def is_master(header: fits.Header) -> bool:
    """A combined calibration frame: IMAGETYP 'MASTER ...' or more than one frame combined."""
    kind = str(header.get("IMAGETYP", "")).upper()
    try:
        combined = int(header.get("NCOMBINE", 1) or 1)
    except (TypeError, ValueError):
        combined = 1
    return "MASTER" in kind or combined > 1


def is_raw(header: fits.Header) -> bool:
    """A light as the camera read it: no calibration recorded in the header.

    CALSTAT is what datas_pipeline.calibration.masters writes (and IRAF-era software did); HISTORY lines
    naming calibration are how PixInsight, Siril and MaxIm DL record theirs.
    """
    if header.get("CALSTAT"):
        return False
    history = " ".join(str(v) for v in header.get("HISTORY", [])).lower() if "HISTORY" in header else ""
    return not any(word in history for word in ("calibrat", "dark subtract", "flat field", "bias subtract"))


def header_fields(summary: FitsSummary, info: FrameHeader) -> dict:
    """Frame columns from a checked file and its normalised header."""
    shape = summary.shape[-2:]
    return {
        "width": int(shape[1]),
        "height": int(shape[0]),
        "image_type": info.image_type or "light",
        "is_master": is_master(summary.header),
        "observed_at": info.mid_exposure or info.date_obs,
        "exposure_s": info.exposure_s,
        "filter": (info.filter or "")[:32],
        "header": info.as_dict(),
        "fits_header": header_cards(summary.header),
    }
