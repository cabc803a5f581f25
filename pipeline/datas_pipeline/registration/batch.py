"""Register a batch of files on one reference and write the resampled frames, on worker processes.

Each frame is independent of the others once the reference's stars are known, so frames go
to a process pool (:mod:`datas_pipeline.parallel`); the reference's stars and the settings
reach each worker once. The records and the files written are the same with any number of
workers.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import read_frame, write_frame
from datas_pipeline.parallel import map_in_order, worker_context
from datas_pipeline.registration.register import ReferenceStars, RegistrationGates, register_image
from datas_pipeline.registration.warp import warp_image


@dataclass(frozen=True)
class BatchSettings:
    """What every frame of a batch is registered and written with."""

    reference_name: str
    out_dir: Path
    kind: str = "similarity"
    order: int = 2
    kernel: str = "lanczos3"
    prefix: str = "r_"
    gates: RegistrationGates = RegistrationGates()


_CONTEXT: dict = {}


def _set_context(reference: ReferenceStars, settings: BatchSettings) -> None:
    _CONTEXT.update(reference=reference, settings=settings)


def read_mono(path: Path) -> tuple[np.ndarray, object]:
    """A 2-D frame and its header (colour frames are refused: register one plane at a time)."""
    frame = read_frame(path)
    if frame.data.ndim != 2:
        raise PipelineError(f"{path}: a colour frame {frame.data.shape}; register one plane (filter) at a time")
    return frame.data, frame.header


def register_file(path: Path) -> dict:
    """Register one file on the context's reference and write it; the record says what happened.

    A refusal's record holds the reason only; ``unreadable`` marks files that could not be read.
    """
    reference: ReferenceStars = _CONTEXT["reference"]
    settings: BatchSettings = _CONTEXT["settings"]
    record = {"file": str(path)}
    try:
        data, header = read_mono(path)
    except PipelineError as exc:
        return {**record, "accepted": False, "reason": str(exc), "unreadable": True}
    try:
        result = register_image(reference, data, kind=settings.kind, order=settings.order, gates=settings.gates)
    except PipelineError as exc:
        # One frame the registration cannot handle is that frame's refusal, not the batch's end.
        return {**record, "accepted": False, "reason": str(exc)}
    record.update(accepted=result.accepted, reason=result.reason)
    if not result.accepted:
        return record
    q = result.quality
    record.update(dx=q.dx, dy=q.dy, rotation_deg=q.rotation_deg, scale=q.scale, inliers=q.inliers, rms_px=q.rms_px,
                  flipped=q.flipped, overlap=q.overlap)
    warped = warp_image(data, result.transform, reference.shape, kernel=settings.kernel)
    header = header.copy()
    header["REGREF"] = (settings.reference_name[:68], "registration reference")
    header["REGKIND"] = (settings.kind, "transform fitted")
    for key, value, comment in (("REGDX", q.dx, "[px] shift of the reference centre"),
                                ("REGDY", q.dy, "[px] shift of the reference centre"),
                                ("REGROT", q.rotation_deg, "[deg] rotation"),
                                ("REGSCALE", q.scale, "frame px per reference px"),
                                ("REGRMS", q.rms_px, "[px] rms of matched stars")):
        header[key] = (round(float(value), 6), comment)
    header["REGINLI"] = (q.inliers, "matched stars")
    header["REGKERN"] = (settings.kernel, "interpolation kernel")
    target = settings.out_dir / f"{settings.prefix}{path.stem}.fits"
    write_frame(target, warped.data, header, overwrite=True)
    record["output"] = str(target)
    return record


def register_files(reference: ReferenceStars, paths: list[Path], settings: BatchSettings,
                   jobs: int | None = 1) -> Iterator[dict]:
    """Records of :func:`register_file` for each path, in order, computed on ``jobs`` processes."""
    with worker_context(_set_context, (reference, settings), jobs) as executor:
        yield from map_in_order(register_file, paths, jobs, executor)
