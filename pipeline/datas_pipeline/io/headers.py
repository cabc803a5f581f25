"""One typed record of what a frame's header says, whatever software wrote it.

Capture programs disagree on keywords (EXPTIME or EXPOSURE, OBJCTRA as sexagesimal hours
or RA in degrees, IMAGETYP 'Light Frame' or 'object', GAIN as e-/ADU or as a camera
setting). :func:`normalise_header` reads all the usual spellings into :class:`FrameHeader`
and lists what is missing or contradictory in ``issues`` instead of guessing: a value that
two keywords disagree on is left as None, with both readings in the message.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from astropy.io import fits
from astropy.time import Time

from datas_pipeline.io.fits import bayer_pattern

IssueKind = Literal["missing", "contradictory", "invalid"]
IMAGE_TYPES = ("light", "dark", "flat", "bias")

# Keyword spellings, most specific first.
EXPOSURE_KEYS = ("EXPTIME", "EXPOSURE", "EXP_TIME", "EXPOSURE_TIME", "ITIME")
FILTER_KEYS = ("FILTER", "FILTER1", "FILTNAME", "FILTER-NAME", "INSFLNAM")
TYPE_KEYS = ("IMAGETYP", "IMAGETYPE", "FRAMETYP", "FRAME", "OBSTYPE", "IMGTYPE")
CAMERA_KEYS = ("INSTRUME", "CAMERA", "DETECTOR", "CCD_NAME")
OFFSET_KEYS = ("OFFSET", "BLKLEVEL", "CAMOFFST")
TEMPERATURE_KEYS = ("CCD-TEMP", "CCDTEMP", "DET-TEMP", "SENSTEMP", "TEMPERAT", "CCD_TEMP")
OBJECT_KEYS = ("OBJECT", "OBJNAME", "TARGET")
# (RA key, Dec key, whether a bare number means hours)
POINTING_KEYS = (
    ("RA", "DEC", False), ("OBJCTRA", "OBJCTDEC", True), ("RA_OBJ", "DEC_OBJ", False),
    ("RA_OBS", "DEC_OBS", False), ("TELRA", "TELDEC", True), ("CAT-RA", "CAT-DEC", True),
)
LATITUDE_KEYS = ("SITELAT", "LAT-OBS", "OBSLAT", "LATITUDE", "OBSGEO-B")
LONGITUDE_KEYS = ("SITELONG", "LONG-OBS", "OBSLONG", "LONGITUD", "OBSGEO-L")
ELEVATION_KEYS = ("SITEELEV", "ALT-OBS", "OBSELEV", "ALTITUDE", "OBSGEO-H")

# How each field is named in messages.
LABELS = {
    "exposure_s": "exposure", "image_type": "image type", "temperature_c": "sensor temperature",
    "set_temperature_c": "set-point temperature", "object_name": "object", "site_lat_deg": "site latitude",
    "site_lon_deg": "site longitude", "site_elevation_m": "site elevation", "pixel_size_um": "pixel size",
    "focal_length_mm": "focal length", "read_noise_e": "read noise", "electrons_per_adu": "e-/ADU gain",
}

_TYPE_WORDS = {
    "light": ("light", "object", "science", "sci"),
    "dark": ("dark", "darkflat", "flatdark", "dark flat", "flat dark"),
    "flat": ("flat", "skyflat", "domeflat", "twilight"),
    "bias": ("bias", "zero", "offset"),
}
# Exposure-like and pointing values that agree within these are one reading, not two.
_EXPOSURE_TOL_S = 1e-3
_POINTING_TOL_DEG = 0.05


@dataclass(frozen=True)
class HeaderIssue:
    """One problem with a header: which field, what kind, and what the keywords said."""

    field: str
    kind: IssueKind
    message: str


@dataclass(frozen=True)
class FrameHeader:
    """What a frame's header says, in fixed units. None where the header does not say.

    Times are UTC; angles degrees (longitude east-positive); temperatures degrees Celsius;
    exposure seconds; focal length mm; pixel size micrometres (as binned); elevation m.
    ``gain`` is the GAIN keyword as written (a camera setting for most CMOS software);
    ``electrons_per_adu`` is only set when the header says so (EGAIN, or a GAIN whose
    comment gives e-/ADU).
    """

    date_obs: datetime | None = None
    exposure_s: float | None = None
    filter: str | None = None
    image_type: str | None = None
    camera: str | None = None
    binning: tuple[int, int] | None = None
    gain: float | None = None
    electrons_per_adu: float | None = None
    read_noise_e: float | None = None
    offset: float | None = None
    temperature_c: float | None = None
    set_temperature_c: float | None = None
    object_name: str | None = None
    ra_deg: float | None = None
    dec_deg: float | None = None
    site_lat_deg: float | None = None
    site_lon_deg: float | None = None
    site_elevation_m: float | None = None
    telescope: str | None = None
    focal_length_mm: float | None = None
    pixel_size_um: float | None = None
    airmass: float | None = None
    bayer_pattern: str | None = None
    issues: tuple[HeaderIssue, ...] = field(default_factory=tuple)

    @property
    def mid_exposure(self) -> datetime | None:
        """UTC time at the middle of the exposure."""
        if self.date_obs is None or self.exposure_s is None:
            return None
        return self.date_obs + timedelta(seconds=self.exposure_s / 2.0)

    @property
    def pixel_scale_arcsec(self) -> float | None:
        """Pixel scale (arcsec/px) from pixel size and focal length, when both are known."""
        if not self.pixel_size_um or not self.focal_length_mm:
            return None
        return 206.264806 * self.pixel_size_um / self.focal_length_mm

    def issue_fields(self) -> set[str]:
        return {issue.field for issue in self.issues}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: ISO dates, issues as dicts."""
        out = asdict(self)
        out["date_obs"] = self.date_obs.isoformat() if self.date_obs else None
        out["binning"] = list(self.binning) if self.binning else None
        return out


class _Reader:
    """Reads one header, collecting issues as it goes."""

    def __init__(self, header: fits.Header):
        self.header = header
        self.issues: list[HeaderIssue] = []

    def issue(self, name: str, kind: IssueKind, message: str) -> None:
        self.issues.append(HeaderIssue(name, kind, message))

    def raw(self, key: str) -> Any:
        value = self.header.get(key)
        if isinstance(value, str):
            value = value.strip()
            return value or None
        return None if value is None or isinstance(value, fits.card.Undefined) else value

    def text(self, name: str, keys: tuple[str, ...], required: bool = True) -> str | None:
        found = [(k, str(self.raw(k))) for k in keys if self.raw(k) is not None]
        if not found:
            if required:
                self.issue(name, "missing", f"no {LABELS.get(name, name)} keyword ({', '.join(keys)})")
            return None
        return found[0][1]

    def number(
        self, name: str, keys: tuple[str, ...], required: bool = True, tol: float = 1e-6
    ) -> float | None:
        values = []
        for key in keys:
            value = self.raw(key)
            if value is None:
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                self.issue(name, "invalid", f"{key} = {value!r} is not a number")
                continue
            if math.isfinite(number):
                values.append((key, number))
        if not values:
            if required:
                self.issue(name, "missing", f"no {LABELS.get(name, name)} keyword ({', '.join(keys)})")
            return None
        first = values[0][1]
        disagreeing = [(k, v) for k, v in values if abs(v - first) > tol * max(1.0, abs(first))]
        if disagreeing:
            said = ", ".join(f"{k} = {v:g}" for k, v in values)
            self.issue(name, "contradictory", f"{LABELS.get(name, name)} keywords disagree: {said}")
            return None
        return first


def parse_angle(value: Any, hours: bool = False, bare_hours: bool = False) -> float:
    """Degrees from a number or a sexagesimal string ("22:04:08", "-00 55 31", "5h38m", ...).

    ``hours``: a sexagesimal value is in hours (RA keywords); an explicit ``h`` always means
    hours. ``bare_hours``: a plain number is in hours too (OBJCTRA-style keywords); plain
    numbers are degrees otherwise. Raises ValueError.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) * (15.0 if bare_hours else 1.0)
    text = str(value).strip().lower()
    if not text:
        raise ValueError("empty angle")
    try:
        return float(text) * (15.0 if bare_hours else 1.0)
    except ValueError:
        pass
    negative = text.startswith("-")
    parts = [p for p in re.split(r"[\s:hdms°'\"]+", text.lstrip("+-")) if p]
    if not parts or len(parts) > 3:
        raise ValueError(f"cannot read {value!r} as an angle")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"cannot read {value!r} as an angle") from None
    if any(n < 0 for n in numbers[1:]) or any(n >= 60 for n in numbers[1:]):
        raise ValueError(f"cannot read {value!r} as an angle: minutes or seconds out of range")
    degrees = sum(n / 60.0**i for i, n in enumerate(numbers))
    if hours or "h" in text:
        degrees *= 15.0
    return -degrees if negative else degrees


def parse_date_obs(header: fits.Header) -> tuple[datetime | None, list[str]]:
    """UTC start of exposure from DATE-OBS (+ TIME-OBS/UT), MJD-OBS or JD.

    Returns the time and a list of problems (empty when clean). TIMESYS other than UTC
    (e.g. TT) is converted. A reading that only gives the day (DATE-OBS without a time, an
    integral MJD) cannot contradict a finer one on the same day; the finest reading wins.
    """
    problems: list[str] = []
    scale = str(header.get("TIMESYS", "UTC")).strip().lower() or "utc"
    scale = {"ut": "utc", "gmt": "utc"}.get(scale, scale)
    quick = _plain_utc_date(header, scale)
    if quick is not None:
        return quick, problems
    if scale not in Time.SCALES:
        problems.append(f"TIMESYS = {scale!r} is not a known time scale; read as UTC")
        scale = "utc"
    # (keyword, time, precision in seconds)
    readings: list[tuple[str, Time, float]] = []
    date = header.get("DATE-OBS")
    if isinstance(date, str) and date.strip():
        try:
            time, precise = _date_from_text(date.strip(), header, scale)
            readings.append(("DATE-OBS", time, 1.0 if precise else 86400.0))
        except ValueError as exc:
            problems.append(f"DATE-OBS = {date!r} is not a date ({exc})")
    for key, fmt in (("MJD-OBS", "mjd"), ("JD", "jd"), ("JD-OBS", "jd")):
        value = header.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
            day_only = float(value) == math.floor(value) + (0.5 if fmt == "jd" else 0.0)
            readings.append((key, Time(value, format=fmt, scale=scale), 86400.0 if day_only else 1.0))
    if not readings:
        if not problems:
            problems.append("no DATE-OBS, MJD-OBS or JD keyword")
        return None, problems
    readings.sort(key=lambda r: r[2])
    best_key, best, _ = readings[0]
    for key, other, precision in readings[1:]:
        gap = abs((other - best).sec)
        if gap > max(2.0, precision):
            problems.append(f"{best_key} and {key} disagree by {gap:.0f} s")
            return None, problems
    if readings[0][2] > 1.0:
        problems.append(f"{best_key} gives only the day, not the time of the exposure")
    return best.utc.to_datetime(timezone=UTC), problems


def _plain_utc_date(header: fits.Header, scale: str) -> datetime | None:
    """The common case without astropy's Time (a catalogue reads thousands of headers): a UTC
    DATE-OBS with a time of day and no MJD-OBS or JD to compare it with. None otherwise."""
    date = header.get("DATE-OBS")
    if scale != "utc" or not isinstance(date, str) or "T" not in date or any(
            key in header for key in ("MJD-OBS", "JD", "JD-OBS")):
        return None
    try:
        when = datetime.fromisoformat(date.strip().rstrip("Z"))
    except ValueError:
        return None  # leap seconds, unusual forms: astropy decides
    return when.replace(tzinfo=UTC) if when.tzinfo is None and when.year >= 1000 else None


def _date_from_text(text: str, header: fits.Header, scale: str) -> tuple[Time, bool]:
    """The DATE-OBS time and whether it includes a time of day."""
    old = re.fullmatch(r"(\d\d)/(\d\d)/(\d\d)", text)
    if old:  # the pre-1999 FITS form DD/MM/YY, 19YY
        day, month, year = (int(g) for g in old.groups())
        text = f"{1900 + year:04d}-{month:02d}-{day:02d}"
    text = text.replace(" ", "T").rstrip("Z")
    if "T" not in text:
        for key in ("TIME-OBS", "UT", "UTC-OBS", "UT-START", "TIME"):
            clock = header.get(key)
            if isinstance(clock, str) and re.fullmatch(r"\s*\d{1,2}:\d\d(:\d\d(\.\d*)?)?\s*", clock):
                text = f"{text}T{clock.strip()}"
                break
    return Time(text, format="isot", scale=scale), "T" in text


def _image_type(reader: _Reader) -> str | None:
    text = reader.text("image_type", TYPE_KEYS)
    if text is None:
        return None
    word = re.sub(r"[^a-z ]", "", text.lower()).replace(" frame", "").replace(" field", "").strip()
    word = word.removeprefix("master").strip()
    compact = word.replace(" ", "")
    for kind, words in (("dark", _TYPE_WORDS["dark"]),) + tuple(
        (k, v) for k, v in _TYPE_WORDS.items() if k != "dark"
    ):
        if compact in {w.replace(" ", "") for w in words} or any(compact.startswith(w.replace(" ", "")) for w in words):
            return kind
    reader.issue("image_type", "invalid", f"image type {text!r} is not light, dark, flat or bias")
    return None


def _binning(reader: _Reader) -> tuple[int, int] | None:
    x = reader.number("binning", ("XBINNING", "BINX", "XBIN"), required=False)
    y = reader.number("binning", ("YBINNING", "BINY", "YBIN"), required=False)
    if x is not None:
        return int(x), int(y if y is not None else x)
    for key in ("CCDSUM", "BINNING"):
        text = reader.raw(key)
        if text is not None:
            parts = re.findall(r"\d+", str(text))
            if len(parts) in (1, 2):
                return int(parts[0]), int(parts[-1])
            reader.issue("binning", "invalid", f"{key} = {text!r} is not a binning")
            return None
    reader.issue("binning", "missing", "no binning keyword (XBINNING/YBINNING, CCDSUM, BINNING)")
    return None


def _angle(reader: _Reader, name: str, keys: tuple[str, ...], hours: bool = False) -> float | None:
    values = []
    for key in keys:
        raw = reader.raw(key)
        if raw is None:
            continue
        try:
            values.append((key, parse_angle(raw, hours=hours)))
        except ValueError as exc:
            reader.issue(name, "invalid", f"{key} = {raw!r}: {exc}")
    if not values:
        reader.issue(name, "missing", f"no {LABELS.get(name, name)} keyword ({', '.join(keys)})")
        return None
    first = values[0][1]
    if any(abs(v - first) > 1.0 / 60.0 for _, v in values):
        said = ", ".join(f"{k} = {v:.5f}" for k, v in values)
        reader.issue(name, "contradictory", f"{LABELS.get(name, name)} keywords disagree: {said}")
        return None
    return first


def _pointing(reader: _Reader) -> tuple[float | None, float | None]:
    readings = []
    for ra_key, dec_key, hours in POINTING_KEYS:
        ra, dec = reader.raw(ra_key), reader.raw(dec_key)
        if ra is None or dec is None:
            continue
        try:
            ra_deg = parse_angle(ra, hours=True, bare_hours=hours)
            dec_deg = parse_angle(dec)
        except ValueError as exc:
            reader.issue("pointing", "invalid", f"{ra_key}/{dec_key} = {ra!r}, {dec!r}: {exc}")
            continue
        if not (0.0 <= ra_deg < 360.0 + 1e-9 and -90.0 <= dec_deg <= 90.0):
            reader.issue("pointing", "invalid", f"{ra_key}/{dec_key} = {ra!r}, {dec!r} is off the sky")
            continue
        readings.append((ra_key, ra_deg % 360.0, dec_deg))
    if not readings:
        reader.issue("pointing", "missing", "no pointing keywords (RA/DEC, OBJCTRA/OBJCTDEC, ...)")
        return None, None
    _, ra0, dec0 = readings[0]
    for _key, ra, dec in readings[1:]:
        if _separation(ra0, dec0, ra, dec) > _POINTING_TOL_DEG:
            said = "; ".join(f"{k}: {r:.4f}, {d:.4f}" for k, r, d in readings)
            reader.issue("pointing", "contradictory", f"pointing keywords disagree by more than "
                         f"{_POINTING_TOL_DEG} deg ({said})")
            return None, None
    return ra0, dec0


def _separation(ra1: float, dec1: float, ra2: float, dec2: float) -> float:
    r1, d1, r2, d2 = map(math.radians, (ra1, dec1, ra2, dec2))
    c = math.sin(d1) * math.sin(d2) + math.cos(d1) * math.cos(d2) * math.cos(r1 - r2)
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def _gain(reader: _Reader) -> tuple[float | None, float | None]:
    gain = reader.number("gain", ("GAIN",), required=False)
    egain = reader.number("electrons_per_adu", ("EGAIN", "E-GAIN", "CCDGAIN"), required=False)
    comment = reader.header.comments["GAIN"].lower() if "GAIN" in reader.header else ""
    if egain is None and gain is not None and re.search(r"e-?\s*/\s*adu|electrons?\s*/\s*adu|e-?/dn", comment):
        egain = gain
    if gain is None and egain is None:
        reader.issue("gain", "missing", "no GAIN or EGAIN keyword")
    elif egain is None:
        reader.issue("electrons_per_adu", "missing",
                     f"EGAIN missing: e-/ADU unknown (GAIN = {gain:g} may be a camera setting)")
    return gain, egain


def electrons_per_adu(header: fits.Header) -> float | None:
    """The e-/ADU conversion gain a header states, or ``None`` when it does not.

    EGAIN (or E-GAIN, CCDGAIN) is e-/ADU; GAIN only when its comment says so, because most
    CMOS capture programs write their camera's gain *setting* there. The server's stages and
    the site agent both read the gain through this (a ``None`` means errors computed with 1 e-/ADU).
    """
    return _gain(_Reader(header))[1]


def normalise_header(header: fits.Header) -> FrameHeader:
    """Read ``header`` into a :class:`FrameHeader`; problems are listed in ``issues``."""
    r = _Reader(header)
    date, problems = parse_date_obs(header)
    for message in problems:
        kind: IssueKind = "missing" if message.startswith("no ") or "only the day" in message else (
            "contradictory" if "disagree" in message else "invalid")
        r.issue("date_obs", kind, message)
    exposure = r.number("exposure_s", EXPOSURE_KEYS, tol=_EXPOSURE_TOL_S)
    if exposure is not None and exposure < 0:
        r.issue("exposure_s", "invalid", f"negative exposure {exposure:g} s")
        exposure = None
    image_type = _image_type(r)
    needs_sky = image_type in (None, "light")
    filter_name = r.text("filter", FILTER_KEYS, required=image_type in (None, "light", "flat"))
    camera = r.text("camera", CAMERA_KEYS)
    binning = _binning(r)
    gain, egain = _gain(r)
    offset = r.number("offset", OFFSET_KEYS, required=False)
    if offset is None and not any(k in header for k in OFFSET_KEYS):
        r.issue("offset", "missing", f"no offset keyword ({', '.join(OFFSET_KEYS)})")
    temperature = r.number("temperature_c", TEMPERATURE_KEYS, tol=0.05)
    if temperature is not None and not -100.0 <= temperature <= 60.0:
        r.issue("temperature_c", "invalid", f"sensor temperature {temperature:g} is not a plausible "
                f"value in degrees Celsius (Kelvin?)")
        temperature = None
    set_temperature = r.number("set_temperature_c", ("SET-TEMP", "SETTEMP", "CCD-SET"), required=False)
    object_name = r.text("object_name", OBJECT_KEYS, required=needs_sky)
    if needs_sky:
        ra, dec = _pointing(r)
        lat = _angle(r, "site_lat_deg", LATITUDE_KEYS)
        lon = _angle(r, "site_lon_deg", LONGITUDE_KEYS)
    else:
        ra = dec = lat = lon = None
    elevation = r.number("site_elevation_m", ELEVATION_KEYS, required=False, tol=1e-3)
    pixel = r.number("pixel_size_um", ("XPIXSZ", "PIXSIZE1", "PIXSIZE", "XPIXELSZ"), required=False, tol=1e-3)
    focal = r.number("focal_length_mm", ("FOCALLEN", "FOCAL", "FOCLEN"), required=False, tol=1e-3)
    return FrameHeader(
        date_obs=date, exposure_s=exposure, filter=filter_name, image_type=image_type, camera=camera,
        binning=binning, gain=gain, electrons_per_adu=egain,
        read_noise_e=r.number("read_noise_e", ("RDNOISE", "READNOIS", "RON"), required=False),
        offset=offset, temperature_c=temperature, set_temperature_c=set_temperature,
        object_name=object_name, ra_deg=ra, dec_deg=dec, site_lat_deg=lat, site_lon_deg=lon,
        site_elevation_m=elevation, telescope=r.text("telescope", ("TELESCOP",), required=False),
        focal_length_mm=focal if focal and focal > 0 else None,
        pixel_size_um=pixel if pixel and pixel > 0 else None,
        airmass=r.number("airmass", ("AIRMASS", "SECZ"), required=False, tol=5e-3),
        bayer_pattern=bayer_pattern(header), issues=tuple(r.issues),
    )


def header_celestial_wcs(header: fits.Header, *, require_ra: bool = False):
    """The celestial WCS a header carries (SIP included), or None when it has none or it is malformed.

    ``require_ra`` also refuses a celestial WCS whose first axis is not right ascension
    (galactic or ecliptic axes), for callers that compare positions in RA/Dec directly.
    """
    import warnings

    from astropy.wcs import WCS, FITSFixedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        try:
            wcs = WCS(header).celestial
        except Exception:  # noqa: BLE001 - astropy raises several types for malformed WCS keywords
            return None
    if not (wcs.has_celestial and wcs.wcs.ctype[0].strip()):
        return None
    if require_ra and not wcs.wcs.ctype[0].startswith("RA"):
        return None
    return wcs
