"""Which master bias, dark and flat belong to a light, and why the others do not.

A master is refused when it cannot be right: another camera, binning, gain or offset, a
sensor temperature outside the tolerance (bias and dark), a dark of another exposure that
still holds the bias (so cannot be scaled), a flat of another filter, another shape, or
older than the allowed age. Among the acceptable, the exposure-exact dark is preferred to a
scaled one, then the nearest in date. Every refusal carries its reasons in words.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from datas_pipeline.calibration.masters import Master, MasterKind, read_master
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import is_fits_path
from datas_pipeline.io.headers import FrameHeader


@dataclass(frozen=True)
class MatchRules:
    """Tolerances for matching (degrees Celsius, fractional exposure, days)."""

    temperature_tolerance_c: float = 2.0
    exposure_tolerance: float = 0.01
    allow_dark_scaling: bool = True
    max_age_days: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Refusal:
    """A candidate master that does not fit a light, and every reason why."""

    master: Master
    reasons: tuple[str, ...]

    def describe(self) -> str:
        name = self.master.path.name if self.master.path else f"master {self.master.kind}"
        return f"{name}: " + "; ".join(self.reasons)


@dataclass(frozen=True)
class MasterChoice:
    """The master chosen for one kind (or None), the refused candidates, and caveats."""

    kind: MasterKind
    master: Master | None
    refused: tuple[Refusal, ...] = ()
    notes: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "master": str(self.master.path) if self.master and self.master.path else None,
            "refused": [r.describe() for r in self.refused],
            "notes": list(self.notes),
        }


def _differs(name: str, light_value, master_value, unit: str = "") -> tuple[str | None, str | None]:
    """(refusal, note) for a property both should share."""
    if light_value is None or master_value is None:
        if light_value is None and master_value is None:
            return None, None
        side = "light" if light_value is None else "master"
        return None, f"{name} unknown on the {side}, not checked"
    if isinstance(light_value, float) or isinstance(master_value, float):
        same = abs(float(light_value) - float(master_value)) <= 1e-6 * max(1.0, abs(float(light_value)))
    else:
        same = str(light_value).strip().lower() == str(master_value).strip().lower()
    if same:
        return None, None
    def show(value) -> str:
        if isinstance(value, tuple):
            return "x".join(str(v) for v in value)
        return f"{value:g}" if isinstance(value, float) else str(value)

    return f"{name} {show(master_value)}{unit} differs from the light's {show(light_value)}{unit}", None


def _reasons(
    light: FrameHeader, light_shape: tuple[int, ...], master: Master, rules: MatchRules
) -> tuple[list[str], list[str]]:
    info = master.info
    refusals: list[str] = []
    notes: list[str] = []
    if tuple(master.data.shape) != tuple(light_shape):
        refusals.append(f"shape {master.data.shape} differs from the light's {tuple(light_shape)}")
    checks = [("camera", light.camera, info.camera, ""), ("binning", light.binning, info.binning, ""),
              ("gain", light.gain, info.gain, ""), ("offset", light.offset, info.offset, "")]
    if master.kind == "flat":
        checks.append(("filter", light.filter, info.filter, ""))
    for name, lv, mv, unit in checks:
        if name == "filter" and (lv is None) != (mv is None):
            refusals.append(f"the flat is for filter {mv!r}" if lv is None else
                            f"the flat names no filter but the light was taken through {lv!r}")
            continue
        refusal, note = _differs(name, lv, mv, unit)
        refusals += [refusal] if refusal else []
        notes += [note] if note else []
    if master.kind in ("bias", "dark"):
        if light.temperature_c is not None and info.temperature_c is not None:
            gap = abs(light.temperature_c - info.temperature_c)
            if gap > rules.temperature_tolerance_c:
                refusals.append(f"sensor at {info.temperature_c:.1f} C, the light at {light.temperature_c:.1f} C "
                                f"(tolerance {rules.temperature_tolerance_c:g} C)")
        else:
            notes.append("sensor temperature unknown, not checked")
    if master.kind == "dark":
        refusals += _dark_exposure_refusals(light, master, rules)
    limit = rules.max_age_days.get(master.kind)
    if limit is not None and light.date_obs and info.date_obs:
        age = abs((light.date_obs - info.date_obs).total_seconds()) / 86400.0
        if age > limit:
            refusals.append(f"taken {age:.1f} days from the light (limit {limit:g})")
    return refusals, notes


def _dark_exposure_refusals(light: FrameHeader, dark: Master, rules: MatchRules) -> list[str]:
    if light.exposure_s is None or dark.exposure_s is None:
        return ["exposure unknown on the " + ("light" if light.exposure_s is None else "dark")]
    if _exposure_matches(light, dark, rules):
        return []
    if not dark.bias_subtracted:
        return [f"exposure {dark.exposure_s:g} s differs from the light's {light.exposure_s:g} s and the dark "
                f"still holds the bias, so it cannot be scaled"]
    if not rules.allow_dark_scaling:
        return [f"exposure {dark.exposure_s:g} s differs from the light's {light.exposure_s:g} s (scaling disabled)"]
    return []


def _exposure_matches(light: FrameHeader, dark: Master, rules: MatchRules) -> bool:
    if light.exposure_s is None or dark.exposure_s is None:
        return False
    return abs(light.exposure_s - dark.exposure_s) <= rules.exposure_tolerance * max(light.exposure_s, 1e-9)


def choose_master(
    light: FrameHeader, light_shape: tuple[int, ...], candidates: Sequence[Master], kind: MasterKind,
    rules: MatchRules = MatchRules(),
) -> MasterChoice:
    """The best master of ``kind`` for a light, with the reasons each other candidate failed."""
    accepted: list[tuple[tuple, Master, list[str]]] = []
    refused: list[Refusal] = []
    for master in (c for c in candidates if c.kind == kind):
        reasons, notes = _reasons(light, light_shape, master, rules)
        if reasons:
            refused.append(Refusal(master, tuple(reasons)))
            continue
        when = master.info.date_obs
        age = abs((light.date_obs - when).total_seconds()) if (light.date_obs and when) else float("inf")
        scaled = kind == "dark" and not _exposure_matches(light, master, rules)
        exposure_gap = abs(light.exposure_s - master.exposure_s) if scaled else 0.0
        temperature_gap = (abs(light.temperature_c - master.info.temperature_c)
                           if light.temperature_c is not None and master.info.temperature_c is not None else 0.0)
        if scaled:
            notes = notes + [f"dark scaled from {master.exposure_s:g} s to {light.exposure_s:g} s"]
        accepted.append(((scaled, exposure_gap, age, temperature_gap), master, notes))
    if not accepted:
        return MasterChoice(kind, None, tuple(refused), (f"no usable master {kind}",))
    accepted.sort(key=lambda item: item[0])
    _, best, notes = accepted[0]
    # The runners-up are not refused, only not chosen: they stay out of the refusal list.
    return MasterChoice(kind, best, tuple(refused), tuple(dict.fromkeys(notes)))


def choose_masters(
    light: FrameHeader, light_shape: tuple[int, ...], library: Sequence[Master], rules: MatchRules = MatchRules()
) -> dict[str, MasterChoice]:
    """Bias, dark and flat for a light. A dark that holds the bias makes a bias unnecessary."""
    dark = choose_master(light, light_shape, library, "dark", rules)
    flat = choose_master(light, light_shape, library, "flat", rules)
    if dark.master is not None and not dark.master.bias_subtracted:
        bias = MasterChoice("bias", None, (), ("the chosen dark includes the bias",))
    else:
        bias = choose_master(light, light_shape, library, "bias", rules)
    return {"bias": bias, "dark": dark, "flat": flat}


def load_master_library(folder: str | Path) -> list[Master]:
    """Every master (IMAGETYP bias, dark or flat) among the FITS files in ``folder``."""
    masters = []
    for path in sorted(Path(folder).glob("*")):
        if not is_fits_path(path):
            continue
        try:
            masters.append(read_master(path))
        except PipelineError:
            continue
    return masters
