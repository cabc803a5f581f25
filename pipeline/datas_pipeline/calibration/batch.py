"""Calibrate many lights with the same masters on worker processes.

The masters reach each worker once (the pool's initialiser), not with every light; each
light is read, calibrated and written by one worker. The files are the same with any number
of workers.
"""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from datas_pipeline.calibration.masters import Master, Sections, calibrate_frame
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.parallel import map_in_order, worker_context

_MASTERS: dict = {}


def _set_masters(bias: Master | None, dark: Master | None, flat: Master | None, sections: Sections,
                 out: Path) -> None:
    _MASTERS.update(bias=bias, dark=dark, flat=flat, sections=sections, out=out)


def calibrate_file(path: Path) -> Path:
    """Calibrate one light with the context's masters and write it to the output folder."""
    m = _MASTERS
    result = calibrate_frame(read_frame(path), m["bias"], m["dark"], m["flat"], m["sections"])
    return write_frame(m["out"] / path.name, result.data, result.header, overwrite=True)


def calibrate_files(paths: list[Path], out: Path, bias: Master | None, dark: Master | None, flat: Master | None,
                    sections: Sections, jobs: int | None = 1) -> Iterator[Path]:
    """The written path of each light, in order, calibrated on ``jobs`` processes."""
    with worker_context(_set_masters, (bias, dark, flat, sections, Path(out)), jobs) as executor:
        yield from map_in_order(calibrate_file, paths, jobs, executor)
    _MASTERS.clear()
