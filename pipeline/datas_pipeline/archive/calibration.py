"""A calibration library from a share's raw darks, flats and biases (and any masters).

Calibration frames are grouped into the sets one master would be built from: same kind,
camera, binning, gain, offset and image size, sensor temperature within
:data:`TEMPERATURE_TOLERANCE_C` of the set's middle, and the same exposure (darks) or
filter (flats). Each set stands in for its master in
:func:`datas_pipeline.calibration.match.choose_masters`, the one matcher of the project, so a
light gets the same answer (and the same refusal reasons) as an uploaded master would give.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from datas_pipeline.calibration.masters import Master
from datas_pipeline.calibration.match import MasterChoice, MatchRules, choose_master, choose_masters
from datas_pipeline.io.headers import FrameHeader

# Sensor temperatures within this of a set's middle belong to it, degrees Celsius.
TEMPERATURE_TOLERANCE_C = 1.0
ARCHIVE_RULES = MatchRules(temperature_tolerance_c=TEMPERATURE_TOLERANCE_C)


@dataclass(frozen=True)
class CalibrationFile:
    """One calibration frame of the share: an id of the caller's, its kind, header and shape."""

    id: int
    path: str
    kind: str
    info: FrameHeader
    shape: tuple[int, int]
    is_master: bool = False
    bias_subtracted: bool = False


@dataclass
class CalibrationSet:
    """Calibration frames one master is (or was) made of, described by a synthetic header."""

    label: str
    kind: str
    files: list[CalibrationFile]
    temperature_c: float | None
    bias: CalibrationSet | None = None
    master: Master = field(init=False)

    def __post_init__(self) -> None:
        self._describe()

    def _describe(self) -> None:
        first = self.files[0]
        self.master = Master(self.kind, np.broadcast_to(np.float32(0.0), first.shape), self._header(),
                             Path(self.label))

    def subtract_bias(self, bias: CalibrationSet) -> None:
        """Raw darks combined after ``bias`` is taken out: a master that scales with exposure."""
        self.bias = bias
        self._describe()

    @property
    def is_master(self) -> bool:
        return len(self.files) == 1 and self.files[0].is_master

    def _header(self) -> fits.Header:
        info = self.files[0].info
        header = fits.Header()
        values = {"IMAGETYP": self.kind, "INSTRUME": info.camera, "GAIN": info.gain, "OFFSET": info.offset,
                  "CCD-TEMP": self.temperature_c, "EXPTIME": info.exposure_s, "FILTER": info.filter,
                  "BIASSUB": self.bias is not None or all(f.bias_subtracted for f in self.files)}
        if info.binning:
            values["XBINNING"], values["YBINNING"] = info.binning
        dates = sorted(f.info.date_obs for f in self.files if f.info.date_obs is not None)
        if dates:
            values["DATE-OBS"] = dates[len(dates) // 2].strftime("%Y-%m-%dT%H:%M:%S")
        for key, value in values.items():
            if value is not None:
                header[key] = value
        return header

    def describe(self) -> dict:
        info = self.files[0].info
        return {"label": self.label, "kind": self.kind, "frames": len(self.files), "is_master": self.is_master,
                "camera": info.camera, "binning": list(info.binning) if info.binning else None,
                "gain": info.gain, "offset": info.offset, "temperature_c": self.temperature_c,
                "exposure_s": info.exposure_s if self.kind == "dark" else None,
                "filter": info.filter if self.kind == "flat" else None,
                "files": [f.path for f in self.files]}


def _key(f: CalibrationFile) -> tuple:
    info = f.info
    return (f.kind, f.is_master, (info.camera or "").strip().lower(), info.binning, info.gain, info.offset, f.shape,
            round(info.exposure_s, 3) if f.kind == "dark" and info.exposure_s is not None else None,
            (info.filter or "").strip().lower() if f.kind == "flat" else None)


def _temperature_runs(files: list[CalibrationFile], tolerance: float) -> list[list[CalibrationFile]]:
    """Split by sensor temperature: a run never spans more than twice the tolerance."""
    known = sorted((f for f in files if f.info.temperature_c is not None), key=lambda f: f.info.temperature_c)
    runs: list[list[CalibrationFile]] = []
    for f in known:
        if runs and f.info.temperature_c - runs[-1][0].info.temperature_c <= 2.0 * tolerance:
            runs[-1].append(f)
        else:
            runs.append([f])
    unknown = [f for f in files if f.info.temperature_c is None]
    return runs + ([unknown] if unknown else [])


def _label(kind: str, info: FrameHeader, temperature: float | None, index: int) -> str:
    parts = [kind]
    if kind == "dark" and info.exposure_s is not None:
        parts.append(f"{info.exposure_s:g}s")
    if kind == "flat":
        parts.append(info.filter or "nofilter")
    if temperature is not None:
        parts.append(f"{temperature:+.0f}C")
    if info.binning:
        parts.append(f"bin{info.binning[0]}")
    if info.gain is not None:
        parts.append(f"g{info.gain:g}")
    parts.append(str(index))
    return "_".join(p.replace("/", "-").replace(" ", "-") for p in parts)


def group_calibration(files: Sequence[CalibrationFile], tolerance_c: float = TEMPERATURE_TOLERANCE_C
                      ) -> list[CalibrationSet]:
    """Calibration sets: same kind, camera, binning, gain, offset and shape, temperature within
    ``tolerance_c`` (degrees Celsius) of the middle, same exposure (darks) or filter (flats).
    A master file is a set of its own."""
    by_key: dict[tuple, list[CalibrationFile]] = {}
    for f in files:
        if f.is_master:
            by_key[(*_key(f), f.id)] = [f]
        else:
            by_key.setdefault(_key(f), []).append(f)
    sets: list[CalibrationSet] = []
    for key in sorted(by_key, key=repr):
        for run in _temperature_runs(by_key[key], tolerance_c):
            temps = [f.info.temperature_c for f in run if f.info.temperature_c is not None]
            temperature = round(float(np.median(temps)), 2) if temps else None
            sets.append(CalibrationSet(_label(run[0].kind, run[0].info, temperature, len(sets) + 1), run[0].kind,
                                       sorted(run, key=lambda f: f.path), temperature))
    # Dark scaling where the data allow: raw darks with a bias of their camera, settings and
    # temperature are combined bias-subtracted, so a dark of another exposure can be scaled.
    for dark in (s for s in sets if s.kind == "dark" and not s.is_master):
        bias = bias_for(dark, sets)
        if bias is not None:
            dark.subtract_bias(bias)
    return sets


@dataclass(frozen=True)
class LightCalibration:
    """For one light: per kind the chosen set (or None) and the reason in words."""

    choices: dict[str, MasterChoice]
    sets: dict[str, CalibrationSet | None]

    def as_dict(self) -> dict:
        out = {}
        for kind, choice in self.choices.items():
            chosen = self.sets[kind]
            out[kind] = {"set": chosen.label if chosen else None,
                         "files": [f.path for f in chosen.files] if chosen else [],
                         "reason": _reason(kind, choice, chosen),
                         "refused": [r.describe() for r in choice.refused]}
        return out


def _reason(kind: str, choice: MasterChoice, chosen: CalibrationSet | None) -> str:
    if chosen is None:
        notes = "; ".join(choice.notes)
        if kind == "bias" and "includes the bias" in notes:
            return "not needed: the chosen dark includes the bias"
        refused = len(choice.refused)
        return f"no match: {notes or 'no candidate'}" + (f" ({refused} set(s) refused, see 'refused')"
                                                        if refused else " (no such calibration frames)")
    said = ["same camera, binning, gain, offset and size"]
    if kind in ("bias", "dark") and chosen.temperature_c is not None:
        said.append(f"sensor at {chosen.temperature_c:+.1f} C, within {TEMPERATURE_TOLERANCE_C:g} C")
    if kind == "dark":
        said.append(f"exposure {chosen.master.exposure_s:g} s")
        if chosen.bias is not None:
            said.append(f"combined after bias {chosen.bias.label}")
    if kind == "flat":
        said.append(f"filter {chosen.master.info.filter!r}")
    if chosen.master.info.date_obs is not None:
        said.append(f"nearest in date ({chosen.master.info.date_obs:%Y-%m-%d})")
    return "; ".join(said + list(choice.notes))


def calibrate_light(light: FrameHeader, shape: tuple[int, int], sets: Sequence[CalibrationSet],
                    rules: MatchRules = ARCHIVE_RULES) -> LightCalibration:
    """The calibration sets a light should use, with the reason for each choice."""
    by_label = {s.label: s for s in sets}
    choices = choose_masters(light, shape, [s.master for s in sets], rules)
    chosen = {kind: by_label.get(str(c.master.path)) if c.master is not None else None
              for kind, c in choices.items()}
    return LightCalibration(choices, chosen)


def bias_for(calibration: CalibrationSet, sets: Sequence[CalibrationSet], rules: MatchRules = ARCHIVE_RULES
             ) -> CalibrationSet | None:
    """The bias set to take out of a dark or flat set before it is combined (None when none fits)."""
    choice = choose_master(calibration.master.info, calibration.files[0].shape, [s.master for s in sets], "bias",
                           rules)
    if choice.master is None:
        return None
    return next(s for s in sets if s.label == str(choice.master.path))

