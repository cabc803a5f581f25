"""A ready-to-process package of one pointing: file layout, manifest and Siril script.

Layout (every path relative to the package folder)::

    lights/<filter>[_<n>]/...      the lights, one folder per filter and calibration set
    darks/<set>/ flats/<set>/ biases/<set>/   the calibration frames (or master) they need
    manifest.json, manifest.csv    every light: file, sky position, grades, calibration
    process.ssf                    Siril script: calibrate, register and stack each folder

The script is written for Siril 1.0 (``convert``, ``preprocess``, ``register``, ``stack``;
Siril 1.2 renamed ``preprocess`` to ``calibrate``) and is run from the package folder:
``siril-cli -d <package> -s process.ssf``. Each stack lands in ``result_<folder>.fit``.
"""
from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

SIRIL_REQUIRES = "1.0.0"
CSV_COLUMNS = ("file", "filter", "exposure_s", "observed_at", "ra_deg", "dec_deg", "rotation_deg", "wcs_source",
               "accepted", "fwhm_arcsec", "dark", "flat", "bias", "original_path")


def safe_name(text: str) -> str:
    """A folder or Siril sequence name: letters, digits, '-' and '_' only."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-_") or "none"


def package_folder_name(text: str) -> str:
    """A package's folder name: letters, digits and ``. + - _`` (a position keeps its signs)."""
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", text).strip("._") or "package"


@dataclass
class LightFolder:
    """Lights of one filter that share their calibration: one Siril sequence."""

    folder: str
    filter: str
    dark: str | None = None
    flat: str | None = None
    bias: str | None = None
    files: list[str] = field(default_factory=list)
    scale_dark: bool = False


@dataclass(frozen=True)
class CalibrationFolder:
    """A calibration set in the package: ``kind``, folder, and its master file when it is one
    (then nothing is combined). ``bias`` is the bias folder a flat or dark set is corrected
    with before it is combined."""

    kind: str
    folder: str
    master_file: str | None = None
    bias: str | None = None


def _sequence(folder: str) -> str:
    return safe_name(folder.split("/")[-1]).lower()


def _master_reference(calibration: CalibrationFolder) -> str:
    """How a light's ``preprocess`` names the master, from the ``process`` folder."""
    if calibration.master_file:
        return f"../{calibration.folder}/{calibration.master_file}"
    return f"{calibration.kind}_{_sequence(calibration.folder)}_stacked"


def siril_script(lights: Sequence[LightFolder], calibration: dict[str, CalibrationFolder], *,
                 cfa: bool = False) -> str:
    """A Siril 1.0 script that builds the masters, then calibrates, registers and stacks each
    light folder into ``result_<folder>.fit`` in the package folder.

    Parameters
    ----------
    lights : sequence of LightFolder
        Light folders with the calibration folders (keys of ``calibration``) they use.
    calibration : dict
        Calibration folders by their folder path.
    cfa : bool
        The lights are raw colour mosaics: debayer after calibration.
    """
    lines = [f"requires {SIRIL_REQUIRES}", "# Written by DATAS export_packages: run from the package folder,",
             "# siril-cli -d <package> -s process.ssf", ""]
    used = {name for light in lights for name in (light.bias, light.dark, light.flat) if name}
    used |= {calibration[name].bias for name in list(used) if calibration[name].bias}
    order = {"bias": 0, "dark": 1, "flat": 2}
    for name in sorted(used, key=lambda n: (order[calibration[n].kind], n)):
        item = calibration[name]
        if item.master_file:
            continue
        sequence = f"{item.kind}_{_sequence(item.folder)}"
        depth = "../" * (item.folder.count("/") + 1)
        lines += [f"# master {item.kind} from {item.folder}", f"cd {item.folder}",
                  f"convert {sequence} -out={depth}process", f"cd {depth}process"]
        if item.bias:
            lines.append(f"preprocess {sequence} -bias={_master_reference(calibration[item.bias])}")
            sequence = f"pp_{sequence}"
        norm = "-norm=mul" if item.kind == "flat" else "-nonorm"
        lines.append(f"stack {sequence} rej 3 3 {norm} -out={item.kind}_{_sequence(item.folder)}_stacked")
        lines += ["cd ..", ""]
    for light in lights:
        sequence = f"light_{_sequence(light.folder)}"
        depth = "../" * (light.folder.count("/") + 1)
        lines += [f"# {len(light.files)} light(s) through {light.filter}", f"cd {light.folder}",
                  f"convert {sequence} -out={depth}process", f"cd {depth}process"]
        dark = light.dark
        if light.scale_dark and dark:
            # Siril 1.0's dark optimisation (-opt) crashes (1.0.6, tested): a dark of another
            # exposure is left to the manifest, which names it and its scale.
            lines.append(f"# the dark {calibration[dark].folder} must be scaled to this exposure; Siril 1.0 cannot "
                         f"(-opt crashes): calibrated with bias and flat only")
            dark = None
        options = [f"-{kind}={_master_reference(calibration[name])}"
                   for kind, name in (("bias", light.bias), ("dark", dark), ("flat", light.flat)) if name]
        if options or cfa:
            options += ["-cfa", "-equalize_cfa", "-debayer"] if cfa else []
            lines.append(f"preprocess {sequence} " + " ".join(options))
            sequence = f"pp_{sequence}"
        lines += [f"register {sequence}",
                  f"stack r_{sequence} rej 3 3 -norm=addscale -output_norm -out=../result_{_sequence(light.folder)}",
                  "cd ..", ""]
    return "\n".join(lines) + "\n"


def manifest_csv(rows: Sequence[dict]) -> str:
    """The manifest's lights as CSV (one row per light, :data:`CSV_COLUMNS`)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = dict(row)
        for kind in ("dark", "flat", "bias"):
            flat[kind] = " ".join((row.get("calibration") or {}).get(kind, {}).get("files", []))
        writer.writerow(flat)
    return out.getvalue()


def manifest_json(manifest: dict) -> str:
    return json.dumps(manifest, indent=2, sort_keys=False, default=str) + "\n"
