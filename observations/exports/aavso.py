"""Photometry in the AAVSO Extended File Format, and as plain CSV.

The Extended format (aavso.org/aavso-extended-file-format) is a header of ``#KEY=value``
lines (TYPE, OBSCODE, SOFTWARE, DELIM, DATE, OBSTYPE) and one delimited line per
observation with 15 fields: STARID, DATE, MAGNITUDE, MAGERR, FILTER, TRANS, MTYPE, CNAME,
CMAG, KNAME, KMAG, AIRMASS, GROUP, CHART, NOTES. A missing value is ``na``. Every field rule
WebObs enforces is applied here, and an observation that cannot satisfy one is left out with
the reason rather than written wrongly (a name too long, a filter without an AAVSO code, a
magnitude that is instrumental rather than standardised).

Conventions chosen where the format leaves room:

* DATE is the mid-exposure Julian Date (UTC) or, with ``date="HJD"``, heliocentric.
* Comparison stars measured by the DATAS pipeline are standard catalogue magnitudes, so
  MTYPE is STD and TRANS is NO (no colour transformation). An ensemble is reported as
  CNAME ``ENSEMBLE`` with CMAG ``na``; KMAG is then the check star's magnitude measured
  through the ensemble (as VPhot reports it), and NOTES carries the instrumental ones.
* CHART names the comparison catalogue (``Tycho-2``) when the stars came from it; an AAVSO
  sequence id given as ``aavso_chart`` in the target's metadata is used otherwise.
* STARID is ``aavso_name`` from the target's metadata when set (an AAVSO name or AUID),
  else the target's name.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from astropy import units as u
from astropy.coordinates import EarthLocation, SkyCoord
from astropy.time import Time
from datas_pipeline.sky.timedata import configure_time_data

from observations.models import Observation

COLUMNS = ("STARID", "DATE", "MAGNITUDE", "MAGERR", "FILTER", "TRANS", "MTYPE", "CNAME", "CMAG", "KNAME", "KMAG",
           "AIRMASS", "GROUP", "CHART", "NOTES")
LIMITS = {"STARID": 30, "DATE": 16, "MAGNITUDE": 8, "MAGERR": 6, "CNAME": 20, "CMAG": 8, "KNAME": 20, "KMAG": 8,
          "AIRMASS": 7, "GROUP": 5, "CHART": 20}
AAVSO_FILTERS = ("U", "B", "V", "R", "I", "J", "H", "K", "TG", "TB", "TR", "CV", "CR", "SZ", "SU", "SG", "SR", "SI",
                 "STU", "STV", "STB", "STY", "STHBW", "STHBN", "MA", "MB", "MI", "ZS", "Y", "HA", "HAC")
# Filter names as filter wheels report them -> AAVSO codes (compared lower-case, spaces removed).
FILTER_NAMES = {
    "u": "U", "b": "B", "v": "V", "r": "R", "rc": "R", "i": "I", "ic": "I", "j": "J", "h": "H", "k": "K",
    "johnsonu": "U", "johnsonb": "B", "johnsonv": "V", "cousinsr": "R", "cousinsi": "I",
    "g": "TG", "green": "TG", "tg": "TG", "blue": "TB", "tb": "TB", "red": "TR", "tr": "TR",
    "clear": "CV", "c": "CV", "cv": "CV", "l": "CV", "lum": "CV", "luminance": "CV", "none": "CV", "cbb": "CV",
    "cr": "CR", "u'": "SU", "g'": "SG", "r'": "SR", "i'": "SI", "z'": "SZ", "sloanu": "SU", "sloang": "SG",
    "sloanr": "SR", "sloani": "SI", "sloanz": "SZ", "sdssu": "SU", "sdssg": "SG", "sdssr": "SR", "sdssi": "SI",
    "sdssz": "SZ", "zs": "ZS", "y": "Y", "ha": "HA", "halpha": "HA", "h-alpha": "HA", "hac": "HAC",
}
DELIMITERS = {"comma": ",", "semicolon": ";", "exclamation": "!", "tab": "\t"}
OBSTYPES = ("CCD", "DSLR", "PEP")
# Photometry methods whose magnitudes are on a standard system (comparison stars' catalogue values).
STANDARDISED = ("ensemble", "differential", "zero-point", "zero_point", "comparison")
OBSCODE = re.compile(r"^[A-Z0-9]{1,10}$")


class ExportError(ValueError):
    """The export as asked cannot be written (bad observer code, delimiter, date type)."""


class Unreportable(Exception):
    """One observation cannot be written without breaking a rule; the message says which."""


@dataclass
class AavsoReport:
    """The file, how many observations it holds, and those left out with their reasons."""

    text: str
    rows: int
    skipped: list[tuple[str, str]] = field(default_factory=list)


def aavso_filter(name: str | None) -> str | None:
    """The AAVSO code for a filter name as the wheel reports it, or None."""
    if not name:
        return None
    if name.strip().upper() in AAVSO_FILTERS:
        return name.strip().upper()
    return FILTER_NAMES.get(re.sub(r"[\s_]+", "", name).lower())


def _number(value: float | None, digits: int, column: str, *, na: bool = True) -> str:
    if value is None:
        if na:
            return "na"
        raise Unreportable(f"no {column.lower()}")
    text = f"{value:.{digits}f}"
    if len(text) > LIMITS[column]:
        raise Unreportable(f"{column} {text} is longer than {LIMITS[column]} characters")
    return text


def _label(value: str | None, column: str) -> str:
    if not value:
        return "na"
    text = str(value).strip()
    if len(text) > LIMITS[column]:
        raise Unreportable(f"{column} {text!r} is longer than {LIMITS[column]} characters")
    return text


def _date(observation: Observation, date_type: str) -> str:
    time = Time(observation.observed_at, scale="utc")
    if date_type == "HJD":
        site = observation.site
        location = EarthLocation(lat=site.latitude * u.deg, lon=site.longitude * u.deg, height=site.elevation_m * u.m)
        target = SkyCoord(observation.target.ra_deg * u.deg, observation.target.dec_deg * u.deg)
        configure_time_data()
        shift = time.light_travel_time(target, "heliocentric", location=location)
        return _number((time.utc + shift).jd, 5, "DATE")
    return _number(time.jd, 5, "DATE", na=False)


def _stars(observation: Observation) -> tuple[list[dict], dict | None]:
    stars = observation.comparison_stars or []
    comparisons = [s for s in stars if s.get("role", "comparison") == "comparison" and s.get("used", True)]
    check = next((s for s in stars if s.get("role") == "check"), None)
    return comparisons, check


def aavso_row(observation: Observation, date_type: str = "JD") -> dict[str, str]:
    """The 15 fields of one observation. Raises `Unreportable` with the rule it would break."""
    if observation.magnitude is None:
        raise Unreportable("no magnitude")
    method = (observation.photometry_method or "").lower()
    if not any(word in method for word in STANDARDISED):
        raise Unreportable(f"photometry method {observation.photometry_method or 'unknown'!r} is not "
                           f"standardised against comparison stars")
    code = aavso_filter(observation.filter)
    if code is None:
        raise Unreportable(f"filter {observation.filter!r} has no AAVSO code")
    target = observation.target
    comparisons, check = _stars(observation)
    single = len(comparisons) == 1
    catalogs = {s.get("catalog") for s in comparisons if s.get("catalog")}
    chart = target.metadata.get("aavso_chart") if not catalogs else sorted(catalogs)[0].split(" ")[0]
    notes = []
    if check is not None:
        notes += [f"KMAGINS={check['instrumental_mag']:.4f}" if check.get("instrumental_mag") is not None else "",
                  f"KREFMAG={check['catalog_mag']:.3f}" if check.get("catalog_mag") is not None else ""]
    if single and comparisons[0].get("catalog_mag") is not None:
        notes.append(f"CREFMAG={comparisons[0]['catalog_mag']:.3f}")
    if observation.airmass is not None:
        notes.append(f"VX={observation.airmass:.4f}")
    if comparisons and not single:
        notes.append(f"NCOMP={len(comparisons)}")
    if observation.quality_flags:
        notes.append("FLAGS=" + "/".join(observation.quality_flags))
    notes.append(f"OBSID={observation.observation_id}")
    kmag = None
    if check is not None:
        kmag = check.get("instrumental_mag") if single else check.get("measured_mag")
    row = {
        "STARID": _label(target.metadata.get("aavso_name") or target.name, "STARID"),
        "DATE": _date(observation, date_type),
        "MAGNITUDE": _number(observation.magnitude, 3, "MAGNITUDE", na=False),
        "MAGERR": _number(observation.magnitude_error, 3, "MAGERR"),
        "FILTER": code,
        "TRANS": "NO",
        "MTYPE": "STD",
        "CNAME": _label(comparisons[0].get("name"), "CNAME") if single else ("ENSEMBLE" if comparisons else "na"),
        "CMAG": _number(comparisons[0].get("instrumental_mag"), 3, "CMAG") if single else "na",
        "KNAME": _label(check.get("name") if check else None, "KNAME"),
        "KMAG": _number(kmag, 3, "KMAG"),
        "AIRMASS": _number(observation.airmass, 4, "AIRMASS"),
        "GROUP": "na",
        "CHART": _label(chart, "CHART"),
        "NOTES": "".join(f"|{n}" for n in notes if n) or "na",
    }
    if row["STARID"] == "na":
        raise Unreportable("the target has no name")
    return row


def _check_options(obscode: str, delimiter: str, date_type: str, obstype: str) -> str:
    if not OBSCODE.match(obscode or ""):
        raise ExportError(f"observer code {obscode!r} is not an AAVSO observer code (letters and digits, e.g. 'XYZ')")
    if delimiter not in DELIMITERS:
        raise ExportError(f"delimiter must be one of {', '.join(DELIMITERS)}")
    if date_type not in ("JD", "HJD"):
        raise ExportError("date must be JD or HJD")
    if obstype not in OBSTYPES:
        raise ExportError(f"obstype must be one of {', '.join(OBSTYPES)} (report CMOS cameras as CCD)")
    return DELIMITERS[delimiter]


def extended_format(observations: Iterable[Observation], *, obscode: str, software: str, delimiter: str = "comma",
                    date_type: str = "JD", obstype: str = "CCD") -> AavsoReport:
    """The AAVSO Extended File Format text for ``observations`` (time-ordered as given)."""
    sep = _check_options(obscode, delimiter, date_type, obstype)
    lines = ["#TYPE=EXTENDED", f"#OBSCODE={obscode}", f"#SOFTWARE={software[:255]}",
             f"#DELIM={'tab' if sep == chr(9) else sep}", f"#DATE={date_type}", f"#OBSTYPE={obstype}"]
    skipped: list[tuple[str, str]] = []
    rows = 0
    for observation in observations:
        try:
            row = aavso_row(observation, date_type)
        except Unreportable as exc:
            skipped.append((str(observation.observation_id), str(exc)))
            continue
        clash = [k for k, v in row.items() if sep in v or (k != "NOTES" and ("|" in v or "#" in v))]
        if clash:
            skipped.append((str(observation.observation_id), f"{', '.join(clash)} contains the delimiter, '|' or '#'"))
            continue
        lines.append(sep.join(row[c] for c in COLUMNS))
        rows += 1
    return AavsoReport("\n".join(lines) + "\n", rows, skipped)


CSV_COLUMNS = ("observation_id", "target", "target_id", "site", "site_id", "observed_at_utc", "jd_mid", "filter",
               "magnitude", "magnitude_error", "method", "airmass", "exposure_s", "seeing_arcsec", "ra_deg",
               "dec_deg", "comparisons", "check_star", "check_magnitude", "quality_flags", "aavso_filter",
               "aavso_reportable")


def csv_format(observations: Iterable[Observation]) -> str:
    """Every observation as a CSV row, with whether (and why not) it is reportable to the AAVSO."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for o in observations:
        comparisons, check = _stars(o)
        try:
            aavso_row(o)
            reportable = "yes"
        except Unreportable as exc:
            reportable = f"no: {exc}"
        writer.writerow([
            o.observation_id, o.target.name, o.target_id, o.site.name, o.site_id,
            o.observed_at.isoformat(), f"{Time(o.observed_at).jd:.6f}", o.filter,
            "" if o.magnitude is None else f"{o.magnitude:.4f}",
            "" if o.magnitude_error is None else f"{o.magnitude_error:.4f}", o.photometry_method,
            "" if o.airmass is None else f"{o.airmass:.4f}", o.exposure_sec,
            "" if o.seeing_arcsec is None else f"{o.seeing_arcsec:.2f}", f"{o.ra_deg:.7f}", f"{o.dec_deg:.7f}",
            len(comparisons), (check or {}).get("name", ""),
            "" if not check or check.get("measured_mag") is None else f"{check['measured_mag']:.4f}",
            ";".join(o.quality_flags), aavso_filter(o.filter) or "", reportable,
        ])
    return out.getvalue()
