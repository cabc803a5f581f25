"""FITS frames as the agent writes them: a complete header and a crash-safe file."""
from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle
from astropy.io import fits
from astropy.time import Time

from datas_agent import __version__
from datas_agent.config import AgentConfig
from datas_agent.drivers.base import Exposure
from datas_agent.storage import atomic_write_bytes


@dataclass(frozen=True)
class FrameContext:
    """What the agent knows about a frame beyond the pixels."""

    observation_id: str
    target_id: str | int | None
    target_name: str
    ra_deg: float            # J2000, where the target is
    dec_deg: float
    filter_name: str
    airmass: float
    altitude_deg: float
    azimuth_deg: float
    telescope: str
    image_type: str = "Light Frame"


def fits_time(when: datetime) -> str:
    """ISO 8601 UTC without a zone suffix, millisecond precision, as FITS DATE-OBS wants."""
    if when.tzinfo is not None:
        when = when.astimezone(UTC).replace(tzinfo=None)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def mid_exposure(exposure: Exposure) -> datetime:
    return exposure.started_at + timedelta(seconds=exposure.exposure_s / 2.0)


def build_header(exposure: Exposure, context: FrameContext, config: AgentConfig) -> fits.Header:
    """The full header: time, exposure, filter, object, pointing, site, airmass, instrument."""
    header = fits.Header()
    started = exposure.started_at
    mid = mid_exposure(exposure)
    cards: list[tuple[str, object, str]] = [
        ("DATE-OBS", fits_time(started), "[UTC] start of exposure"),
        ("DATE-AVG", fits_time(mid), "[UTC] mid-exposure"),
        ("MJD-OBS", round(Time(started).mjd, 8), "[d] start of exposure (UTC)"),
        ("MJD-AVG", round(Time(mid).mjd, 8), "[d] mid-exposure (UTC)"),
        ("EXPTIME", float(exposure.exposure_s), "[s] exposure time"),
        ("EXPOSURE", float(exposure.exposure_s), "[s] exposure time"),
        ("IMAGETYP", context.image_type, "frame type"),
        ("FILTER", context.filter_name, "filter name as the wheel reports it"),
        ("OBJECT", context.target_name, "target name"),
        ("RA", round(context.ra_deg, 7), "[deg] target right ascension (J2000)"),
        ("DEC", round(context.dec_deg, 7), "[deg] target declination (J2000)"),
        ("OBJCTRA", Angle(context.ra_deg * u.deg).to_string(unit=u.hour, sep=" ", precision=2), "J2000 h m s"),
        ("OBJCTDEC", Angle(context.dec_deg * u.deg).to_string(unit=u.deg, sep=" ", precision=1,
                                                               alwayssign=True), "J2000 d m s"),
        ("EQUINOX", 2000.0, "equinox of RA, DEC"),
        ("OBJCTALT", round(context.altitude_deg, 3), "[deg] altitude at start"),
        ("OBJCTAZ", round(context.azimuth_deg, 3), "[deg] azimuth at start"),
        ("AIRMASS", round(context.airmass, 4), "airmass at start (Pickering 2002)"),
        ("SITELAT", config.site.latitude_deg, "[deg] site latitude (north +)"),
        ("SITELONG", config.site.longitude_deg, "[deg] site longitude (east +)"),
        ("SITEELEV", config.site.elevation_m, "[m] site elevation"),
        ("TELESCOP", context.telescope, "telescope"),
    ]
    if config.hardware.focal_length_mm:
        cards.append(("FOCALLEN", config.hardware.focal_length_mm, "[mm] focal length"))
    if config.hardware.aperture_mm:
        cards.append(("APTDIA", config.hardware.aperture_mm, "[mm] aperture diameter"))
    for key, value, comment in cards:
        header[key] = (value, comment)
    device_cards = dict(exposure.header)
    header["INSTRUME"] = (str(device_cards.pop("INSTRUME", "unknown camera")), "camera")
    header["GAIN"] = (_number(device_cards.pop("GAIN", None)), "camera gain setting, as the driver reports it")
    if device_cards.get("EGAIN") is not None:  # only a driver that knows e-/ADU says it
        header["EGAIN"] = (float(device_cards.pop("EGAIN")), "[e-/ADU] conversion gain")
    header["CCD-TEMP"] = (_number(device_cards.pop("CCD-TEMP", None)), "[C] sensor temperature")
    for key, value in device_cards.items():
        if key not in header and value is not None:
            header[key] = value
    header["OBSID"] = (context.observation_id, "DATAS observation id")
    if context.target_id is not None:
        header["TARGETID"] = (str(context.target_id), "DATAS target id")
    header["SITEID"] = (config.server.site_id, "DATAS site id")
    header["SWCREATE"] = (f"datas-agent {__version__}", "software that wrote this file")
    return header


def _number(value: object) -> float | str:
    # FITS needs a value; "UNKNOWN" is what INDI and N.I.N.A. write for an unreported number.
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "UNKNOWN"


def write_frame_file(path: Path, data: np.ndarray, header: fits.Header) -> str:
    """Write the FITS file atomically and durably; return its SHA-256.

    Unsigned 16-bit images are stored the FITS way (int16 with BZERO 32768).
    """
    buffer = io.BytesIO()
    # A copy: HDU.scale() rewrites its array in place, and the caller still measures ``data``.
    hdu = fits.PrimaryHDU(data=np.array(data, copy=True), header=header)
    if np.asarray(data).dtype == np.uint16:
        hdu.scale("int16", bzero=32768)
    hdu.writeto(buffer, output_verify="silentfix")
    return atomic_write_bytes(path, buffer.getvalue())


def header_summary(header: fits.Header) -> dict:
    """The header as JSON-ready key/value pairs for the observation record."""
    return {key: value for key, value in header.items() if key and key not in ("COMMENT", "HISTORY", "")}
