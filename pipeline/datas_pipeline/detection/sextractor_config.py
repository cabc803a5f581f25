"""Read a SExtractor configuration (``default.sex``) into :func:`~datas_pipeline.detection.extract.extract_sources` settings.

Users who tuned SExtractor for their camera keep their file: the detection threshold and
minimum area, the filter (its ``.conv`` file, read beside the configuration), deblending,
cleaning, apertures, Kron parameters, gain, saturation and the background mesh. Without a
weight map SExtractor thresholds against the global background rms, so that is the noise
model chosen here. Settings that change the catalogue and that the extraction cannot honour
(a threshold in surface brightness, a manual background, weight maps) are refused with a
message; settings that only concern SExtractor's own output (catalogue name and type,
check images, memory, verbosity) are ignored and listed.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datas_pipeline.errors import PipelineError

# Keys with no bearing on the measured catalogue.
OUTPUT_ONLY = {
    "CATALOG_NAME", "CATALOG_TYPE", "PARAMETERS_NAME", "CHECKIMAGE_TYPE", "CHECKIMAGE_NAME", "MEMORY_OBJSTACK",
    "MEMORY_PIXSTACK", "MEMORY_BUFSIZE", "VERBOSE_TYPE", "WRITE_XML", "XML_NAME", "STARNNW_NAME", "SEEING_FWHM",
    "PIXEL_SCALE", "MAG_ZEROPOINT", "MAG_GAMMA", "PHOT_PETROPARAMS", "PHOT_FLUXFRAC", "PHOT_AUTOAPERS",
    "ANALYSIS_THRESH", "DETECT_TYPE", "NTHREADS", "HEADER_SUFFIX", "INTERP_TYPE",
}


@dataclass
class SExtractorSettings:
    """Settings read from a SExtractor configuration.

    ``extract`` holds keyword arguments for ``extract_sources``; ``background`` those for
    ``estimate_background`` (``box_size``, ``filter_size``); ``ignored`` the keys that only
    shape SExtractor's own output.
    """

    extract: dict = field(default_factory=dict)
    background: dict = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)


def read_conv(path: Path) -> np.ndarray:
    """A SExtractor filter file (``CONV NORM`` / ``CONV NONORM`` header, rows of numbers)."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise PipelineError(f"cannot read the filter {path}: {exc}") from None
    rows = []
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if not text or text.upper().startswith("CONV"):
            continue
        try:
            rows.append([float(v) for v in text.split()])
        except ValueError:
            raise PipelineError(f"{path}: {line!r} is not a row of numbers") from None
    if not rows or len({len(r) for r in rows}) != 1:
        raise PipelineError(f"{path}: the filter must be a rectangle of numbers")
    return np.array(rows, dtype=np.float32)


def _parse(path: Path) -> dict[str, list[str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise PipelineError(f"cannot read the SExtractor configuration {path}: {exc}") from None
    values: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        key, *rest = shlex.split(line)
        values[key.upper()] = [v for part in rest for v in part.split(",") if v]
    return values


def _numbers(key: str, raw: list[str], count: int | None = None) -> list[float]:
    try:
        numbers = [float(v) for v in raw]
    except ValueError:
        raise PipelineError(f"{key} {' '.join(raw)!r} is not a number") from None
    if not numbers or (count is not None and len(numbers) != count):
        raise PipelineError(f"{key} needs {count or 'a'} number(s), got {' '.join(raw)!r}")
    return numbers


def _yes(key: str, raw: list[str]) -> bool:
    value = (raw or [""])[0].upper()
    if value not in ("Y", "N"):
        raise PipelineError(f"{key} must be Y or N, not {value!r}")
    return value == "Y"


def read_sextractor_config(path: str | Path) -> SExtractorSettings:
    """Translate a ``default.sex`` file; the filter file is looked for beside it."""
    path = Path(path)
    values = _parse(path)
    out = SExtractorSettings(extract={"noise": "global"})
    ex, bg = out.extract, out.background
    for key, raw in values.items():
        if key in OUTPUT_ONLY:
            out.ignored.append(key)
        elif key == "DETECT_THRESH":
            if len(raw) != 1:
                raise PipelineError("DETECT_THRESH in surface brightness (<threshold>,<ZP>) is not supported; "
                                    "give it in sigmas")
            ex["threshold_sigma"] = _numbers(key, raw, 1)[0]
        elif key == "THRESH_TYPE" and raw and raw[0].upper() != "RELATIVE":
            raise PipelineError(f"THRESH_TYPE {raw[0]} is not supported (only RELATIVE, in sigmas)")
        elif key == "DETECT_MINAREA":
            ex["min_area"] = int(_numbers(key, raw, 1)[0])
        elif key == "DEBLEND_NTHRESH":
            ex["deblend_nthresh"] = int(_numbers(key, raw, 1)[0])
        elif key == "DEBLEND_MINCONT":
            ex["deblend_cont"] = _numbers(key, raw, 1)[0]
        elif key == "CLEAN":
            ex["clean"] = _yes(key, raw)
        elif key == "CLEAN_PARAM":
            ex["clean_param"] = _numbers(key, raw, 1)[0]
        elif key == "PHOT_APERTURES":
            ex["aperture_radius"] = _numbers(key, raw)[0] / 2.0  # SExtractor gives diameters
        elif key == "PHOT_AUTOPARAMS":
            factor, min_radius = _numbers(key, raw, 2)
            ex["kron_params"] = (factor, min_radius)
        elif key == "GAIN":
            gain = _numbers(key, raw, 1)[0]
            ex["gain"] = gain if gain > 0 else None
        elif key == "SATUR_LEVEL":
            ex["saturation"] = _numbers(key, raw, 1)[0]
        elif key in ("BACK_SIZE", "BACK_FILTERSIZE"):
            sizes = _numbers(key, raw)
            if len(set(sizes)) != 1:
                raise PipelineError(f"{key} with different width and height ({' '.join(raw)}) is not supported")
            bg["box_size" if key == "BACK_SIZE" else "filter_size"] = int(sizes[0])
        elif key == "BACK_TYPE" and raw and raw[0].upper() != "AUTO":
            raise PipelineError(f"BACK_TYPE {raw[0]} is not supported (only AUTO)")
        elif key == "WEIGHT_TYPE" and raw and raw[0].upper() != "NONE":
            raise PipelineError(f"WEIGHT_TYPE {raw[0]} is not supported: without a weight map the noise is global")
        elif key == "BACKPHOTO_TYPE" and raw and raw[0].upper() != "GLOBAL":
            raise PipelineError("BACKPHOTO_TYPE LOCAL is not supported (fluxes are measured on the mesh background)")
        elif key not in ("FILTER", "FILTER_NAME", "THRESH_TYPE", "BACK_TYPE", "WEIGHT_TYPE", "BACKPHOTO_TYPE"):
            out.ignored.append(key)
    if "FILTER" in values and not _yes("FILTER", values["FILTER"]):
        ex["filter_kernel"] = None
    elif "FILTER_NAME" in values:
        name = Path(values["FILTER_NAME"][0])
        ex["filter_kernel"] = read_conv(name if name.is_absolute() else path.parent / name)
    return out
