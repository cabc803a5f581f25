"""Register frames on one reference and resample them onto its grid: registration + warp.

The glue the command line, colour combination and tests share. Frames that fail a
registration gate are not resampled; their :class:`~datas_pipeline.registration.register.Registration`
says why.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from datas_pipeline.registration.register import (
    ReferenceStars,
    Registration,
    RegistrationGates,
    prepare_reference,
    register_image,
)
from datas_pipeline.registration.warp import Warped, warp_image


@dataclass
class AlignedFrame:
    """A frame's registration and, when accepted, the frame on the reference grid."""

    registration: Registration
    warped: Warped | None


def align_to_reference(
    reference: ReferenceStars,
    image: np.ndarray,
    kind: str = "similarity",
    gates: RegistrationGates | None = None,
    kernel: str = "lanczos3",
) -> AlignedFrame:
    """Register ``image`` on ``reference`` and, if accepted, warp it onto the reference grid."""
    result = register_image(reference, image, kind=kind, gates=gates)
    if not result.accepted:
        return AlignedFrame(result, None)
    return AlignedFrame(result, warp_image(image, result.transform, reference.shape, kernel=kernel))


def align_frames(
    images: Sequence[np.ndarray],
    reference_index: int = 0,
    kind: str = "similarity",
    gates: RegistrationGates | None = None,
    kernel: str = "lanczos3",
) -> list[AlignedFrame]:
    """Align every image on ``images[reference_index]`` (never on its neighbour)."""
    reference = prepare_reference(images[reference_index])
    return [align_to_reference(reference, image, kind, gates, kernel) for image in images]
