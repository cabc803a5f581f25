"""The JSON record of a mover search: ``{"tracks": [...], "frames": [...], "parameters": {...}}``.

Positions are 0-based pixel coordinates of each frame (numpy convention), RA/Dec in
degrees when a WCS was given, times ISO 8601 UTC (mid-exposure; None when the frames had
no DATE-OBS). Streaks are tracks of kind ``"streak"`` with the frame they cross and their ends.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from datas_pipeline.movers.search import MoverResult, Track


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, np.integer | np.bool_):
        return value.item()
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return value


def track_record(track: Track, number: int) -> dict:
    """One mover as JSON: ``kind``, ``positions``, ``rate_px_per_frame``, ``angle_deg``, ``snr`` and details."""
    positions = [{"file": p["file"], "x": p["x"], "y": p["y"], "ra": p.get("ra"), "dec": p.get("dec"),
                  "time": p["time"], "frame": p["frame"], "sigma_px": p["sigma_px"],
                  "sigma_arcsec": p.get("sigma_arcsec"), "snr": p["snr"], "mag_inst": p.get("mag_inst")}
                 for p in track.positions]
    return {"id": f"M{number:04d}", "kind": track.kind, "positions": positions,
            "rate_px_per_frame": track.rate, "angle_deg": track.angle_deg, "snr": track.snr,
            "half_snr": list(track.half_snr), "found_by": track.source, "fit": track.fit}


def streak_record(streak, number: int, names: list[str], times) -> dict:
    """One single-frame trail as JSON (a track of kind ``"streak"``)."""
    return {"id": f"S{number:04d}", "kind": "streak",
            "positions": [{"file": names[streak.frame], "x": streak.x, "y": streak.y, "ra": None, "dec": None,
                           "time": times.utc[streak.frame], "frame": streak.frame}],
            "rate_px_per_frame": None, "angle_deg": streak.angle_deg, "snr": streak.snr,
            "ends": [[streak.x0, streak.y0], [streak.x1, streak.y1]], "length_px": streak.length_px}


def result_json(result: MoverResult, wcs=None) -> dict:
    """The whole search as a JSON-ready dict (NaN as null)."""
    tracks = [track_record(tr, i + 1) for i, tr in enumerate(result.tracks)]
    streaks = [streak_record(s, i + 1, result.names, result.times) for i, s in enumerate(result.streaks)]
    if wcs is not None:
        from datas_pipeline.movers.astrometry import pixel_to_sky

        for record in streaks:
            p = record["positions"][0]
            ra, dec = pixel_to_sky(wcs, np.array([p["x"]]), np.array([p["y"]]))
            p["ra"], p["dec"] = float(ra[0]), float(dec[0])
    return _clean({"tracks": tracks + streaks, "frames": result.frames,
                   "parameters": {**result.parameters, "timings_s": result.timings}})


def write_movers_json(path: str | Path, result: MoverResult, wcs=None) -> Path:
    """Write :func:`result_json` to ``path`` (indented, NaN as null); return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_json(result, wcs), indent=2) + "\n")
    return path
