"""Observation files for the Minor Planet Center: the 80-column format and ADES (PSV and XML).

MPC 80-column optical record (MPC's "Format for optical astrometry"): columns 1-5 packed
number (blank), 6-12 provisional or temporary designation, 13 discovery asterisk, 14 note
1, 15 note 2 (``C`` CCD, ``B`` CMOS), 16-32 UTC date ``YYYY MM DD.dddddd``, 33-44 RA
``HH MM SS.sss``, 45-56 Dec ``sDD MM SS.ss``, 57-65 blank, 66-70 magnitude, 71 band,
72-77 blank, 78-80 observatory code. A site without a code uses ``XXX`` and states its
longitude, latitude and altitude in a ``COM`` header line.

ADES (IAU/MPC Astrometry Data Exchange Standard, version 2022): the same observations with
per-point uncertainties (``rmsRA`` is the RA error times cos(Dec), arcsec) in the
pipe-separated and the XML forms.
"""
from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime

from datas_pipeline.errors import PipelineError


@dataclass(frozen=True)
class Observatory:
    """Who observed where: an MPC code, or ``XXX`` with the site's coordinates.

    Longitude east-positive and latitude in degrees, altitude in metres; ``aperture_m`` in
    metres; ``detector`` ``"CCD"`` or ``"CMO"`` (CMOS; note 2 ``B`` in the 80-column format).
    """

    code: str = "XXX"
    longitude_deg: float | None = None
    latitude_deg: float | None = None
    altitude_m: float | None = None
    name: str = ""
    observers: tuple[str, ...] = ()
    measurers: tuple[str, ...] = ()
    submitter: str = ""
    telescope: str = ""
    design: str = "reflector"
    aperture_m: float | None = None
    detector: str = "CCD"
    contact: str = ""
    ast_cat: str = "Gaia3"
    band: str = "G"
    zeropoint: float | None = None

    def check(self) -> None:
        if len(self.code) != 3 or not self.code.isalnum():
            raise PipelineError(f"observatory code {self.code!r} must be three letters or digits (XXX if none)")
        if self.code.upper() == "XXX" and (self.longitude_deg is None or self.latitude_deg is None):
            raise PipelineError("the XXX code needs the site's longitude and latitude")


def _dms(value: float, hours: bool, decimals: int) -> tuple[str, int, int, float]:
    """Sign and sexagesimal parts, rounded in integer units so 59.9999 never prints as 60."""
    sign = "-" if value < 0 else "+"
    units = 3600 * 10**decimals
    total = round(abs(value) / (15.0 if hours else 1.0) * units)
    if hours:
        total %= 24 * units
    whole, frac = divmod(total, 10**decimals)
    d, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    return sign, d, m, s + frac / 10**decimals


def format_ra(ra_deg: float) -> str:
    """``HH MM SS.sss`` (12 characters)."""
    _, h, m, s = _dms(ra_deg % 360.0, True, 3)
    return f"{h:02d} {m:02d} {s:06.3f}"


def format_dec(dec_deg: float) -> str:
    """``sDD MM SS.ss`` (12 characters)."""
    sign, d, m, s = _dms(dec_deg, False, 2)
    return f"{sign}{d:02d} {m:02d} {s:05.2f}"


def format_date(when: datetime) -> str:
    """``YYYY MM DD.dddddd`` (17 characters), the UTC day with its fraction."""
    day = (when.hour * 3600 + when.minute * 60 + when.second + when.microsecond / 1e6) / 86400.0
    micro = round(day * 1e6)
    if micro >= 1_000_000:  # rounding crossed midnight: print the next day's 0.000000 instead
        from datetime import timedelta

        return format_date((when + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0))
    return f"{when.year:04d} {when.month:02d} {when.day:02d}.{micro:06d}"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _observations(tracks: list[dict]) -> list[tuple[str, dict]]:
    """(designation, position) of every mover position with RA, Dec and time."""
    rows = []
    for number, track in enumerate(t for t in tracks if t["kind"] == "mover"):
        designation = track.get("designation") or f"DAT{number + 1:04d}"
        for p in track["positions"]:
            if p.get("ra") is not None and p.get("dec") is not None and p.get("time"):
                rows.append((designation, p))
    return rows


def _magnitude(p: dict, site: Observatory) -> float | None:
    if site.zeropoint is None or p.get("mag_inst") is None:
        return None
    return float(p["mag_inst"]) + site.zeropoint


def mpc_line(designation: str, p: dict, site: Observatory, discovery: bool = False) -> str:
    """One 80-column observation record."""
    if len(designation) > 7:
        raise PipelineError(f"designation {designation!r} is longer than 7 characters")
    note2 = "B" if site.detector.upper() == "CMO" else "C"
    mag = _magnitude(p, site)
    mag_text = f"{mag:4.1f} " if mag is not None else "     "
    band = site.band[:1] if mag is not None else " "
    line = (" " * 5 + f"{designation:<7}" + ("*" if discovery else " ") + " " + note2
            + format_date(_parse_time(p["time"])) + format_ra(p["ra"]) + format_dec(p["dec"])
            + " " * 9 + mag_text + band + " " * 6 + site.code.upper())
    assert len(line) == 80, line
    return line


def _angle(value: float) -> str:
    d, rem = divmod(round(abs(value) * 3600), 3600)
    m, s = divmod(rem, 60)
    return f"{d} {m:02d} {s:02d}"


def mpc_report(tracks: list[dict], site: Observatory) -> str:
    """The 80-column report: header lines (COD, COM for XXX, CON, OBS, MEA, TEL, NET) and records."""
    site.check()
    header = [f"COD {site.code.upper()}"]
    if site.code.upper() == "XXX":
        ew = "E" if site.longitude_deg >= 0 else "W"
        ns = "N" if site.latitude_deg >= 0 else "S"
        alt = f", Alt. {site.altitude_m:.0f}m" if site.altitude_m is not None else ""
        header.append(f"COM Long. {_angle(site.longitude_deg)} {ew}, Lat. {_angle(site.latitude_deg)} {ns}{alt}, "
                      "Google Earth")
    if site.contact:
        header.append(f"CON {site.contact}")
    if site.observers:
        header.append("OBS " + ", ".join(site.observers))
    if site.measurers:
        header.append("MEA " + ", ".join(site.measurers))
    if site.telescope:
        header.append(f"TEL {site.telescope}")
    header.append(f"NET {site.ast_cat}")
    lines = [mpc_line(d, p, site) for d, p in _observations(tracks)]
    return "\n".join(header + lines) + "\n"


ADES_FIELDS = ("trkSub", "mode", "stn", "obsTime", "ra", "dec", "rmsRA", "rmsDec", "astCat", "mag", "band",
               "logSNR", "remarks")


def _ades_values(designation: str, p: dict, site: Observatory) -> dict:
    sigma = p.get("sigma_arcsec")
    mag = _magnitude(p, site)
    when = _parse_time(p["time"])
    values = {
        "trkSub": designation, "mode": "CMO" if site.detector.upper() == "CMO" else "CCD",
        "stn": site.code.upper(), "obsTime": when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z",
        "ra": f"{p['ra']:.7f}", "dec": f"{p['dec']:+.7f}",
        "rmsRA": f"{sigma:.3f}" if sigma is not None else "", "rmsDec": f"{sigma:.3f}" if sigma is not None else "",
        "astCat": site.ast_cat, "mag": f"{mag:.2f}" if mag is not None else "",
        "band": site.band if mag is not None else "",
        "logSNR": f"{math.log10(max(p['snr'], 1e-3)):.2f}" if p.get("snr") and p["snr"] > 0 else "",
        "remarks": "synthetic tracking (DATAS)",
    }
    return values


def _context(site: Observatory) -> list[tuple[str, list[tuple[str, str]]]]:
    """obsContext groups and their (key, value) pairs, in the ADES order."""
    groups = [("observatory", [("mpcCode", site.code.upper())] + ([("name", site.name)] if site.name else []))]
    if site.submitter:
        groups.append(("submitter", [("name", site.submitter)]))
    groups.append(("observers", [("name", n) for n in site.observers or ("unknown",)]))
    groups.append(("measurers", [("name", n) for n in site.measurers or site.observers or ("unknown",)]))
    telescope = [("design", site.design)]
    if site.aperture_m is not None:
        telescope.append(("aperture", f"{site.aperture_m:g}"))
    telescope.append(("detector", "CMO" if site.detector.upper() == "CMO" else "CCD"))
    if site.telescope:
        telescope.insert(0, ("name", site.telescope))
    groups.append(("telescope", telescope))
    if site.code.upper() == "XXX":
        groups.append(("comment", [("line", f"Long. {site.longitude_deg:.5f}, Lat. {site.latitude_deg:.5f}, "
                                            f"Alt. {site.altitude_m or 0:.0f} m (WGS84)")]))
    return groups


def ades_psv(tracks: list[dict], site: Observatory) -> str:
    """ADES pipe-separated values: ``# group`` / ``! key value`` header, then a column row."""
    site.check()
    lines = ["# version=2022"]
    for group, pairs in _context(site):
        lines.append(f"# {group}")
        lines.extend(f"! {key} {value}" for key, value in pairs)
    rows = [_ades_values(d, p, site) for d, p in _observations(tracks)]
    widths = {f: max([len(f)] + [len(r[f]) for r in rows]) for f in ADES_FIELDS}
    lines.append("|".join(f"{f:<{widths[f]}}" for f in ADES_FIELDS))
    lines.extend("|".join(f"{r[f]:<{widths[f]}}" for f in ADES_FIELDS) for r in rows)
    return "\n".join(lines) + "\n"


def ades_xml(tracks: list[dict], site: Observatory) -> str:
    """ADES XML: ``ades/obsBlock/(obsContext, obsData/optical*)``; empty fields are left out."""
    site.check()
    root = ET.Element("ades", version="2022")
    block = ET.SubElement(root, "obsBlock")
    context = ET.SubElement(block, "obsContext")
    for group, pairs in _context(site):
        element = ET.SubElement(context, group)
        for key, value in pairs:
            ET.SubElement(element, key).text = value
    data = ET.SubElement(block, "obsData")
    for designation, p in _observations(tracks):
        optical = ET.SubElement(data, "optical")
        for key, value in _ades_values(designation, p, site).items():
            if value != "":
                ET.SubElement(optical, key).text = value
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
