"""A stacked preview of one pointing and filter: register, warp, stack, stretch.

Uncalibrated (a preview shows the field and the depth reached, not a finished product): the
lights are registered on the first one with the project's gated star match, warped onto
its grid and stacked with winsorized rejection; frames the registration refuses are left
out and counted.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from datas_pipeline.display.preview import PREVIEW_SIDE, preview_pngs
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import read_frame
from datas_pipeline.registration.register import prepare_reference, register_image
from datas_pipeline.registration.warp import warp_image
from datas_pipeline.stacking.combine import StackOptions, stack_frames


@dataclass(frozen=True)
class StackedPreview:
    """A PNG of the stack, the frames used, and the frames left out with the reason."""

    png: bytes
    used: int
    refused: tuple[tuple[str, str], ...]


def _plane(path: Path) -> np.ndarray:
    data = read_frame(path).data
    return data.mean(axis=0) if data.ndim == 3 else data


def stacked_preview(paths: Sequence[str | Path], side: int = PREVIEW_SIDE) -> StackedPreview:
    """Register ``paths`` on the first, stack them, and return a stretched PNG (``side`` px).

    Raises
    ------
    PipelineError
        Fewer than one frame could be used (the reason of the first refusal is given).
    """
    if not paths:
        raise PipelineError("no frames to preview")
    reference_data = _plane(Path(paths[0]))
    reference = prepare_reference(reference_data)
    warped, refused = [reference_data], []
    for path in paths[1:]:
        try:
            data = _plane(Path(path))
            result = register_image(reference, data)
        except PipelineError as exc:
            refused.append((str(path), str(exc)))
            continue
        if not result.accepted:
            refused.append((str(path), result.reason))
            continue
        warped.append(warp_image(data, result.transform, reference_data.shape).data)
    image = warped[0] if len(warped) == 1 else stack_frames(warped, StackOptions(memory=256 << 20)).image
    (png,) = preview_pngs(np.nan_to_num(image, nan=float(np.nanmedian(image))), (side,))
    return StackedPreview(png, len(warped), tuple(refused))
