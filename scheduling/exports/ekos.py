"""KStars/Ekos tasking: a scheduler list (.esl) and one capture sequence (.esq) per job.

Written the way KStars' own writers lay the files out (``SchedulerProcess::saveScheduler``,
``SequenceQueue::save``) and restricted to what its readers parse (``SchedulerUtils::createJob``,
``SequenceJob::loadFrom``): RA in decimal hours, filter names exactly as the wheel reports
them (an unknown name silently becomes slot 1 in KStars, so it is refused here), whole-second
delays, '.' decimals, no XML comments. The ``read_*`` functions parse files the same way, to
check ours and KStars' own against each other.
"""
from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath, PureWindowsPath
from xml.sax.saxutils import escape, quoteattr

from scheduling.night_plan import TaskingError, TaskingJob

ESL_VERSION = "2.1"
ESQ_VERSION = "2.6"
STEPS = ("Track", "Focus", "Align", "Guide")
STARTUP_PROCEDURES = ("StartupScript", "UnparkDome", "UnparkMount", "UnparkCap")
SHUTDOWN_PROCEDURES = ("WarmCCD", "ParkCap", "ParkMount", "ParkDome")


@dataclass(frozen=True)
class EkosOptions:
    """How the site's KStars is set up.

    ``sequence_dir`` is the absolute folder *on the KStars machine* where the .esq files will
    be (the .esl refers to them by path); ``profile`` an existing Ekos equipment profile.
    ``startup`` is ``at`` (each job starts at its planned time) or ``asap``; ``completion``
    is ``sequence`` (stop when the frames are taken) or ``at`` (stop at the planned end).
    """

    sequence_dir: str = "/home/observer/tasking"
    profile: str = "Default"
    fits_directory: str = "/home/observer/Pictures"
    observer: str = ""
    optical_train: str | None = None
    binning: int = 1
    frame_format: str = "Mono"
    temperature_c: float | None = None
    gain: int | None = None
    offset: int | None = None
    delay_s: int = 0
    dither_every: int = -1
    steps: tuple[str, ...] = STEPS
    startup: str = "at"
    completion: str = "sequence"
    enforce_twilight: bool = True
    enforce_weather: bool = False
    enforce_artificial_horizon: bool = False
    error_strategy: int = 1
    error_delay_s: int = 0
    startup_procedures: tuple[str, ...] = ("UnparkMount",)
    shutdown_procedures: tuple[str, ...] = ("WarmCCD", "ParkMount")

    def __post_init__(self) -> None:
        path = self.sequence_dir
        if not (PurePosixPath(path).is_absolute() or PureWindowsPath(path).is_absolute()):
            raise TaskingError(f"sequence_dir {path!r} must be an absolute path on the KStars machine")
        if any(c in path for c in "&<>\"'"):
            # KStars writes <Sequence> without escaping; keep paths that need none.
            raise TaskingError(f"sequence_dir {path!r} must not contain & < > or quotes")
        if self.startup not in ("at", "asap") or self.completion not in ("sequence", "at"):
            raise TaskingError("startup must be 'at' or 'asap' and completion 'sequence' or 'at'")
        if not set(self.steps) <= set(STEPS):
            raise TaskingError(f"steps must be among {STEPS}")
        if not (set(self.startup_procedures) <= set(STARTUP_PROCEDURES)
                and set(self.shutdown_procedures) <= set(SHUTDOWN_PROCEDURES)):
            raise TaskingError(f"procedures must be among {STARTUP_PROCEDURES} / {SHUTDOWN_PROCEDURES}")
        if self.error_strategy not in (0, 1, 2):
            raise TaskingError("error_strategy is 0 (don't restart), 1 (after termination) or 2 (immediately)")
        if self.binning < 1 or self.delay_s < 0:
            raise TaskingError("binning must be >= 1 and delay_s >= 0 (whole seconds)")


def number(value: float, decimals: int = 6) -> str:
    """A C-locale decimal without trailing zeros ('.' always, as KStars reads)."""
    text = f"{value:.{decimals}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def iso_utc(unix_s: float) -> str:
    """ISO 8601 with an explicit ``Z`` so Qt does not read it as local time."""
    return dt.datetime.fromtimestamp(round(unix_s), tz=dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def file_stem(index: int, name: str) -> str:
    """``03_SN_2024xyz``: a position prefix and the name reduced to safe characters."""
    safe = re.sub(r"[^A-Za-z0-9_.+-]+", "_", name).strip("_.") or "target"
    return f"{index:02d}_{safe}"


def _check_filters(job: TaskingJob, site_filters: Sequence[str]) -> None:
    for step in job.steps:
        if step.filter not in site_filters:
            raise TaskingError(
                f"job {job.name!r}: filter {step.filter!r} is not one of the wheel's names {list(site_filters)}; "
                "KStars would silently use slot 1")
        if step.count < 1 or step.exposure_sec <= 0:
            raise TaskingError(f"job {job.name!r}: each step needs count >= 1 and exposure > 0")


def sequence_xml(job: TaskingJob, site_filters: Sequence[str], options: EkosOptions) -> str:
    """The .esq capture sequence of one job (one ``<Job>`` per filter step)."""
    _check_filters(job, site_filters)
    o = options
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f"<SequenceQueue version='{ESQ_VERSION}'>",
        f"<Observer>{escape(o.observer)}</Observer>",
        "<GuideDeviation enabled='false'>2</GuideDeviation>",
        "<GuideStartDeviation enabled='false'>2</GuideStartDeviation>",
        "<HFRCheck enabled='false'><HFRDeviation>0.5</HFRDeviation><HFRCheckAlgorithm>0</HFRCheckAlgorithm>"
        "<HFRCheckThreshold>10</HFRCheckThreshold><HFRCheckFrames>1</HFRCheckFrames></HFRCheck>",
        "<RefocusOnTemperatureDelta enabled='false'>1</RefocusOnTemperatureDelta>",
        "<RefocusEveryN enabled='false'>60</RefocusEveryN>",
        "<RefocusOnMeridianFlip enabled='false'/>",
    ]
    for step in job.steps:
        lines += [
            "<Job>",
            f"<Exposure>{number(step.exposure_sec, 3)}</Exposure>",
            f"<Format>{escape(o.frame_format)}</Format>",
            "<Encoding>FITS</Encoding>",
            f"<Binning><X>{o.binning}</X><Y>{o.binning}</Y></Binning>",
            "<Frame><X>0</X><Y>0</Y><W>0</W><H>0</H></Frame>",
        ]
        if o.temperature_c is not None:
            lines.append(f"<Temperature force='true'>{number(o.temperature_c, 1)}</Temperature>")
        lines += [
            f"<Filter>{escape(step.filter)}</Filter>",
            "<Type>Light</Type>",
            f"<Count>{int(step.count)}</Count>",
            f"<Delay>{int(o.delay_s)}</Delay>",
            f"<TargetName>{escape(job.name)}</TargetName>",
            f"<GuideDitherPerJob>{int(o.dither_every)}</GuideDitherPerJob>",
            f"<FITSDirectory>{escape(o.fits_directory)}</FITSDirectory>",
            "<PlaceholderFormat>/%t/%T/%F/%t_%T_%F_%e_%D</PlaceholderFormat>",
            "<PlaceholderSuffix>0</PlaceholderSuffix>",
            "<UploadMode>0</UploadMode>",
            _properties(o),
            "<Calibration><PreAction><Type>0</Type></PreAction>"
            "<FlatDuration dark='false'><Type>Manual</Type></FlatDuration></Calibration>",
            "</Job>",
        ]
    lines.append("</SequenceQueue>")
    return "\n".join(lines) + "\n"


def _properties(o: EkosOptions) -> str:
    if o.gain is None and o.offset is None:
        return "<Properties></Properties>"
    elements = "".join(f"<OneElement name={quoteattr(name)}>{value}</OneElement>"
                       for name, value in (("GAIN", o.gain), ("OFFSET", o.offset)) if value is not None)
    return f"<Properties><PropertyVector name='CCD_CONTROLS'>{elements}</PropertyVector></Properties>"


def scheduler_list_xml(jobs: Sequence[TaskingJob], sequence_paths: Sequence[str], options: EkosOptions) -> str:
    """The .esl scheduler list: one ``<Job>`` per tasking job, in priority order (KStars' greedy
    scheduler takes a job's position as its priority)."""
    if len(jobs) != len(sequence_paths):
        raise TaskingError("one sequence path per job is needed")
    o = options
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f"<SchedulerList version='{ESL_VERSION}'>",
             f"<Profile>{escape(o.profile)}</Profile>"]
    for job, path in zip(jobs, sequence_paths, strict=True):
        lines += ["<Job>", "<JobType lead='true'/>", f"<Name>{escape(job.name)}</Name>",
                  f"<Group>{escape(job.group)}</Group>"]
        if o.optical_train:
            lines.append(f"<OpticalTrain>{escape(o.optical_train)}</OpticalTrain>")
        lines += [
            "<Coordinates>",
            f"<J2000RA>{job.ra_deg / 15.0:.6f}</J2000RA>",
            f"<J2000DE>{job.dec_deg:.6f}</J2000DE>",
            "</Coordinates>",
            f"<PositionAngle>{number(job.position_angle_deg, 2)}</PositionAngle>",
            f"<Sequence>{path}</Sequence>",
            "<StartupCondition>" + (f"<Condition value='{iso_utc(job.start)}'>At</Condition>" if o.startup == "at"
                                    else "<Condition>ASAP</Condition>") + "</StartupCondition>",
            "<Constraints>",
            f"<Constraint value='{number(job.min_altitude_deg, 2)}'>MinimumAltitude</Constraint>",
        ]
        if job.moon_separation_deg > 0:
            lines.append(f"<Constraint value='{number(job.moon_separation_deg, 2)}'>MoonSeparation</Constraint>")
        for flag, name in ((o.enforce_weather, "EnforceWeather"), (o.enforce_twilight, "EnforceTwilight"),
                           (o.enforce_artificial_horizon, "EnforceArtificialHorizon")):
            if flag:
                lines.append(f"<Constraint>{name}</Constraint>")
        completion = (f"<Condition value='{iso_utc(job.end)}'>At</Condition>" if o.completion == "at"
                      else "<Condition>Sequence</Condition>")
        lines += ["</Constraints>", f"<CompletionCondition>{completion}</CompletionCondition>",
                  "<Steps>" + "".join(f"<Step>{s}</Step>" for s in o.steps) + "</Steps>", "</Job>"]
    lines += [
        "<SchedulerAlgorithm value='1'/>",
        f"<ErrorHandlingStrategy value='{o.error_strategy}'><delay>{int(o.error_delay_s)}</delay>"
        "</ErrorHandlingStrategy>",
        "<StartupProcedure>" + "".join(f"<Procedure>{p}</Procedure>" for p in o.startup_procedures)
        + "</StartupProcedure>",
        "<ShutdownProcedure>" + "".join(f"<Procedure>{p}</Procedure>" for p in o.shutdown_procedures)
        + "</ShutdownProcedure>",
        "</SchedulerList>",
    ]
    return "\n".join(lines) + "\n"


def ekos_files(jobs: Sequence[TaskingJob], site_filters: Sequence[str], options: EkosOptions,
               list_name: str = "tasking") -> dict[str, str]:
    """File name -> text: one .esq per job and the .esl that runs them, in job order."""
    stems = [file_stem(i, job.name) for i, job in enumerate(jobs, start=1)]
    separator = "\\" if PureWindowsPath(options.sequence_dir).drive else "/"
    base = options.sequence_dir.rstrip("/\\")
    files = {f"{stem}.esq": sequence_xml(job, site_filters, options) for stem, job in zip(stems, jobs, strict=True)}
    paths = [f"{base}{separator}{stem}.esq" for stem in stems]
    files[f"{list_name}.esl"] = scheduler_list_xml(jobs, paths, options)
    return files


def write_ekos(jobs: Sequence[TaskingJob], site_filters: Sequence[str], directory: Path,
               options: EkosOptions) -> list[Path]:
    """Write the files into ``directory`` (sequences first, then the list that names them)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = ekos_files(jobs, site_filters, options)
    written = []
    for name in sorted(files, key=lambda n: n.endswith(".esl")):
        path = directory / name
        path.write_text(files[name], encoding="utf-8")
        written.append(path)
    return written


def read_scheduler_list(text: str) -> list[dict]:
    """The jobs of an .esl as KStars' ``createJob`` reads them (RA in hours as written)."""
    root = ET.fromstring(text)
    if root.tag != "SchedulerList":
        raise TaskingError(f"not a KStars scheduler list (root <{root.tag}>)")
    jobs = []
    for job in root.findall("Job"):
        job_type = job.find("JobType")
        startup = job.find("StartupCondition/Condition")
        completion = job.find("CompletionCondition/Condition")
        jobs.append({
            "lead": job_type is None or job_type.get("lead", "true") == "true",
            "name": job.findtext("Name", ""),
            "group": job.findtext("Group", ""),
            "ra_hours": float(job.findtext("Coordinates/J2000RA")),
            "dec_deg": float(job.findtext("Coordinates/J2000DE")),
            "sequence": job.findtext("Sequence", ""),
            "startup": (startup.text, startup.get("value")) if startup is not None else None,
            "constraints": {c.text: c.get("value") for c in job.findall("Constraints/Constraint")},
            "completion": (completion.text, completion.get("value")) if completion is not None else None,
            "steps": [s.text for s in job.findall("Steps/Step")],
        })
    return jobs


def read_sequence(text: str) -> list[dict]:
    """The capture jobs of an .esq as ``SequenceJob::loadFrom`` reads them (Delay as an int)."""
    root = ET.fromstring(text)
    if root.tag != "SequenceQueue" or float(root.get("version", "0")) < 2.0:
        raise TaskingError("not a KStars sequence queue of version 2.0 or later")
    return [{
        "exposure_sec": float(job.findtext("Exposure")),
        "filter": job.findtext("Filter"),
        "type": job.findtext("Type"),
        "count": _qt_int(job.findtext("Count")),
        "delay_s": _qt_int(job.findtext("Delay", "0")),
        "binning": (int(job.findtext("Binning/X", "1")), int(job.findtext("Binning/Y", "1"))),
    } for job in root.findall("Job")]


def _qt_int(text: str | None) -> int:
    """``QString::toInt``: a whole number, or 0 for anything else ("0.5" reads as 0)."""
    try:
        return int((text or "").strip())
    except ValueError:
        return 0
