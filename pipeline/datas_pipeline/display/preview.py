"""Preview and thumbnail PNGs of a frame, for the portal.

Each size is block-averaged from the one before (noise averages instead of aliasing),
given the automatic screen-transfer stretch of :mod:`datas_pipeline.display.stretch`, and encoded as an
8-bit PNG, north up as in DS9 (FITS row 0 is the bottom).
"""
from __future__ import annotations

import numpy as np

from datas_pipeline.display.stretch import auto_stretch, png_bytes, thumbnail

PREVIEW_SIDE = 1024
THUMBNAIL_SIDE = 256


def preview_pngs(image: np.ndarray, sides: tuple[int, ...] = (PREVIEW_SIDE, THUMBNAIL_SIDE)) -> list[bytes]:
    """PNGs no larger than each of ``sides`` (px, longest side), largest first."""
    out, binned = [], np.asarray(image, dtype=np.float32)
    for side in sorted(sides, reverse=True):
        binned = thumbnail(binned, side)
        out.append(png_bytes(auto_stretch(binned)))
    return out
