"""Preview and thumbnail PNGs of a frame, for the portal.

The frame is binned down (block means, so noise averages instead of aliasing), stretched
and written as an 8-bit greyscale (or RGB) PNG. `display_stretch` is a stand-in until
pipeline/stretch.py lands in main; replace its body with that module's stretch then.
"""
from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

PREVIEW_SIDE = 1024
THUMBNAIL_SIDE = 256


def bin_to_fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """Block-average a 2-D (or (3, ny, nx)) image by an integer factor so it fits ``max_side``."""
    data = np.asarray(image, dtype=np.float32)
    ny, nx = data.shape[-2:]
    factor = max(1, int(np.ceil(max(ny, nx) / max_side)))
    if factor == 1:
        return data
    ny_c, nx_c = (ny // factor) * factor, (nx // factor) * factor
    cropped = data[..., :ny_c, :nx_c]
    shape = (*data.shape[:-2], ny_c // factor, factor, nx_c // factor, factor)
    blocks = cropped.reshape(shape)
    if np.isfinite(cropped).all():
        return blocks.mean(axis=(-3, -1), dtype=np.float32)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN blocks stay NaN
        return np.nanmean(blocks, axis=(-3, -1))


def display_stretch(image: np.ndarray, black_sigma: float = -1.5, white_quantile: float = 0.999,
                    softness: float = 0.05) -> np.ndarray:
    """An asinh display stretch to 0..1 (REPLACE with pipeline.stretch once it is in main).

    The black point sits ``black_sigma`` robust sigmas from the sky median, the white point
    at the ``white_quantile`` of the pixels; ``softness`` is the asinh knee as a fraction of
    that range (smaller brings out fainter detail).
    """
    data = np.asarray(image, dtype=np.float64)
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return np.zeros(data.shape, dtype=np.float32)
    sample = finite if finite.size <= 200_000 else finite[:: finite.size // 200_000]
    median = float(np.median(sample))
    sigma = 1.4826 * float(np.median(np.abs(sample - median))) or float(np.std(sample)) or 1.0
    black = median + black_sigma * sigma
    white = max(float(np.quantile(sample, white_quantile)), black + 10.0 * sigma)
    scaled = np.clip((np.nan_to_num(data, nan=black) - black) / (white - black), 0.0, 1.0)
    return (np.arcsinh(scaled / softness) / np.arcsinh(1.0 / softness)).astype(np.float32)


def png_bytes(image: np.ndarray, max_side: int) -> bytes:
    """A stretched PNG of ``image`` no larger than ``max_side`` pixels on its long side.

    Numpy row 0 is the bottom of a FITS image; it is flipped so north-up frames look
    north-up, as in DS9.
    """
    return _png(bin_to_fit(image, max_side), max_side)


def preview_pngs(image: np.ndarray, sides: tuple[int, ...] = (PREVIEW_SIDE, THUMBNAIL_SIDE)) -> list[bytes]:
    """PNGs at several sizes, largest first; each smaller one is binned from the one before."""
    out, binned = [], np.asarray(image, dtype=np.float32)
    for side in sorted(sides, reverse=True):
        binned = bin_to_fit(binned, side)
        out.append(_png(binned, side))
    return out


def _png(binned: np.ndarray, max_side: int) -> bytes:
    if binned.ndim == 3:
        planes = [display_stretch(plane) for plane in binned]
        pixels = np.stack(planes, axis=-1)
    else:
        pixels = display_stretch(binned)
    array = np.flipud(np.rint(pixels * 255.0)).astype(np.uint8)
    picture = Image.fromarray(array, mode="RGB" if array.ndim == 3 else "L")
    if max(picture.size) > max_side:
        picture.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    picture.save(out, format="PNG", optimize=False)
    return out.getvalue()
