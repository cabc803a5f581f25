"""Ready-to-process packages: one folder per pointing with its lights by filter, the
calibration frames they need, a manifest (JSON and CSV) and a Siril script.

Files are symbolic links to the share (``link``, the default: a mosaic is tens of GB) or
copies (``copy``). Lights the grading rejected are listed in the manifest but left out of
the folders Siril stacks.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from datas_pipeline.archive.calibration import CalibrationSet, bias_for
from datas_pipeline.archive.package import (
    CalibrationFolder,
    LightFolder,
    manifest_csv,
    manifest_json,
    package_folder_name,
    safe_name,
    siril_script,
)

from observations.archive.clusters import PointingCluster
from observations.archive.library import calibration_library, frame_location
from observations.frames import Frame
from sites.models import Site

KIND_FOLDERS = {"dark": "darks", "flat": "flats", "bias": "biases"}


class PackageError(ValueError):
    """A package that cannot be written (folder not empty, file missing), with what to fix."""


@dataclass
class Package:
    """What was written for one cluster."""

    folder: Path
    cluster: PointingCluster
    lights: int = 0
    left_out: int = 0
    calibration_files: int = 0
    missing: list[str] = field(default_factory=list)


def _place(source: Path, destination: Path, mode: str) -> None:
    destination.parent.mkdir(parents=True, exist_ok=True)
    if destination.exists() or destination.is_symlink():
        destination.unlink()
    if mode == "copy":
        shutil.copy2(source, destination)
    else:
        os.symlink(source, destination)


def _source(frame: Frame) -> Path:
    location = frame_location(frame)
    if getattr(frame, "archive_file", None) is None:
        from observations.storage import local_copy

        return local_copy(frame.storage_key, frame.sha256)
    return Path(location)


def _package_name(frame_id: int, path: str) -> str:
    return f"{frame_id:06d}_{Path(path).name}"


def write_package(cluster: PointingCluster, out: Path, mode: str = "link",
                  library: list[CalibrationSet] | None = None, preview: bool = False) -> Package:
    """Write one cluster's package under ``out`` (a sub-folder named after the cluster);
    with ``preview``, a stacked preview PNG per filter (``preview_<folder>.png``)."""
    if mode not in ("link", "copy"):
        raise PackageError(f"mode must be link or copy, not {mode!r}")
    site = Site.objects.get(pk=cluster.site_id)
    library = library if library is not None else calibration_library(site)
    by_label = {s.label: s for s in library}
    folder = out / package_folder_name(cluster.name)
    for owned in ("lights", "darks", "flats", "biases", "process"):  # a re-export starts clean
        if (folder / owned).is_dir():
            shutil.rmtree(folder / owned)
    package = Package(folder, cluster)
    light_folders: dict[tuple, LightFolder] = {}
    used: dict[str, CalibrationFolder] = {}
    rows = []
    for frame in cluster.frames:
        chosen = {kind: (frame.calibration or {}).get(kind, {}) for kind in ("dark", "flat", "bias")}
        sets = {kind: by_label.get(c.get("set")) if c.get("set") else None for kind, c in chosen.items()}
        for kind, c in chosen.items():
            if c and not c.get("set") and kind != "bias":
                package.missing.append(f"{frame.original_name}: {kind}: {c.get('reason')}")
        row = _manifest_row(frame, chosen, sets)
        rows.append(row)
        if frame.accepted is False:
            row["in_stack"] = False
            package.left_out += 1
            continue
        scaled = any("scaled" in note for note in chosen["dark"].get("reason", "").split("; "))
        key = (frame.filter or "none", *(s.label if s else None for s in sets.values()), scaled)
        if key not in light_folders:
            same_filter = sum(1 for k in light_folders if k[0] == key[0])
            name = safe_name(key[0]) + (f"_{same_filter + 1}" if same_filter else "")
            light_folders[key] = LightFolder(f"lights/{name}", key[0], *(
                _calibration_folder(s, library, used) if s else None for s in
                (sets["dark"], sets["flat"], sets["bias"])), scale_dark=scaled)
        target = light_folders[key]
        file_name = _package_name(frame.pk, frame_location(frame))
        _place(_source(frame), folder / target.folder / file_name, mode)
        target.files.append(file_name)
        row["file"] = f"{target.folder}/{file_name}"
        package.lights += 1
    for label, item in used.items():
        calibration_set = by_label[label]
        for member in calibration_set.files:
            _place(Path(member.path), folder / item.folder / _package_name(member.id, member.path), mode)
            package.calibration_files += 1
    manifest = {
        "cluster": {"name": cluster.name, "ra_deg": round(cluster.ra_deg, 6), "dec_deg": round(cluster.dec_deg, 6),
                    "fov_deg": round(cluster.fov_deg, 4), "rotation_deg": cluster.rotation_deg,
                    "site": site.name, "filters": cluster.filters},
        "lights": rows,
        "calibration": {label: by_label[label].describe() | {"folder": item.folder} for label, item in used.items()},
        "stacks": [{"folder": f.folder, "filter": f.filter, "lights": len(f.files),
                    "result": f"result_{safe_name(f.folder.split('/')[-1]).lower()}.fit"}
                   for f in light_folders.values()],
        "missing_calibration": package.missing,
        "siril": "siril-cli -d . -s process.ssf",
    }
    folder.mkdir(parents=True, exist_ok=True)
    if preview:
        manifest["previews"] = _previews(folder, list(light_folders.values()))
    (folder / "manifest.json").write_text(manifest_json(manifest), encoding="utf-8")
    (folder / "manifest.csv").write_text(manifest_csv(rows), encoding="utf-8")
    (folder / "process.ssf").write_text(siril_script(list(light_folders.values()), used), encoding="utf-8")
    return package


def _previews(folder: Path, lights: list[LightFolder]) -> list[dict]:
    """A stacked (uncalibrated) preview PNG per light folder, or why there is none."""
    from datas_pipeline.archive.preview import stacked_preview
    from datas_pipeline.errors import PipelineError

    out = []
    for light in lights:
        name = f"preview_{safe_name(light.folder.split('/')[-1]).lower()}.png"
        try:
            made = stacked_preview([folder / light.folder / f for f in light.files])
        except PipelineError as exc:
            out.append({"folder": light.folder, "preview": None, "reason": str(exc)})
            continue
        (folder / name).write_bytes(made.png)
        out.append({"folder": light.folder, "preview": name, "frames": made.used,
                    "refused": [{"file": Path(p).name, "reason": r} for p, r in made.refused]})
    return out


def _calibration_folder(chosen: CalibrationSet, library: list[CalibrationSet], used: dict) -> str:
    """Register a calibration set (and a flat set's bias) in the package; its key in ``used``."""
    if chosen.label in used:
        return chosen.label
    bias = None
    if chosen.kind == "flat" and not chosen.is_master:
        bias = bias_for(chosen, library)
    elif chosen.kind == "dark":
        bias = chosen.bias
    if bias is not None:
        _calibration_folder(bias, library, used)
    master = _package_name(chosen.files[0].id, chosen.files[0].path) if chosen.is_master else None
    used[chosen.label] = CalibrationFolder(chosen.kind, f"{KIND_FOLDERS[chosen.kind]}/{safe_name(chosen.label)}",
                                           master, bias.label if bias else None)
    return chosen.label


def _manifest_row(frame: Frame, chosen: dict, sets: dict) -> dict:
    quality = frame.quality or {}
    calibration = {}
    for kind, c in chosen.items():
        s = sets[kind]
        calibration[kind] = {"set": c.get("set"), "reason": c.get("reason", "not matched yet"),
                             "files": [f"{KIND_FOLDERS[kind]}/{safe_name(s.label)}/{_package_name(m.id, m.path)}"
                                       for m in s.files] if s else []}
    return {
        "file": None, "original_path": frame_location(frame), "frame_id": frame.pk, "sha256": frame.sha256,
        "filter": frame.filter, "exposure_s": frame.exposure_s,
        "observed_at": frame.observed_at.isoformat() if frame.observed_at else None,
        "ra_deg": frame.ra_deg, "dec_deg": frame.dec_deg, "rotation_deg": frame.rotation_deg,
        "wcs_source": frame.wcs_source or (frame.astrometry or {}).get("method", ""),
        "object_in_header": (frame.header or {}).get("object_name"),
        "accepted": frame.accepted, "fwhm_arcsec": frame.fwhm_arcsec,
        "grades": {k: quality.get(k) for k in ("stars", "fwhm_px", "eccentricity", "background", "weight",
                                               "catalog_expected", "catalog_found", "reasons") if k in quality},
        "calibration": calibration, "in_stack": True,
    }
