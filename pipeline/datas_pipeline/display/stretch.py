"""Display stretches and preview files: asinh, automatic midtones transfer, PNG/JPEG/TIFF, thumbnails.

Images are linear float arrays, 2-D (mono) or (3, ny, nx) (RGB planes, as FITS stores
them). A stretch maps them to [0, 1]; writers quantise to 8 or 16 bits. FITS puts the
first row at the bottom, image files at the top, so writers flip rows unless told not to.

The automatic stretch is the screen transfer function of PixInsight's STF AutoStretch:
shadows clipped at ``median - 2.8 MADN``, highlights at the maximum, and the midtones
balance ``m`` chosen so that the median background lands at ``target_background`` (0.25).
The midtones transfer function is ``MTF(m, x) = (m - 1) x / ((2 m - 1) x - m)``.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from datas_pipeline.errors import PipelineError
from datas_pipeline.robust import median_sigma

FORMATS = {".png": "png", ".jpg": "jpeg", ".jpeg": "jpeg", ".tif": "tiff", ".tiff": "tiff"}


def _planes(image: np.ndarray) -> np.ndarray:
    data = np.asarray(image, dtype=np.float32)
    if data.ndim == 2:
        return data[None]
    if data.ndim == 3 and data.shape[0] == 3:
        return data
    raise PipelineError(f"expected a 2-D image or 3 colour planes, got shape {data.shape}")


def _normalised(planes: np.ndarray) -> np.ndarray:
    """Rescale to [0, 1] over the finite range of all planes together (NaN becomes 0)."""
    finite = np.isfinite(planes)
    if not finite.any():
        return np.zeros_like(planes)
    lo, hi = float(np.min(planes[finite])), float(np.max(planes[finite]))
    span = hi - lo if hi > lo else 1.0
    return np.where(finite, (planes - lo) / span, 0.0).astype(np.float32)


def mtf(m: float | np.ndarray, x: np.ndarray) -> np.ndarray:
    """Midtones transfer function: 0 -> 0, m -> 0.5, 1 -> 1."""
    x = np.asarray(x, dtype=np.float32)
    m = np.asarray(m, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (m - 1) * x / ((2 * m - 1) * x - m)
    return np.where(x <= 0, 0.0, np.where(x >= 1, 1.0, out)).astype(np.float32)


def _sample(plane: np.ndarray, limit: int = 1 << 18) -> np.ndarray:
    step = max(1, int(np.sqrt(plane.size / limit)))
    return plane[::step, ::step].ravel()


def auto_stretch(image: np.ndarray, target_background: float = 0.25, shadows_clip: float = -2.8,
                 linked: bool = True) -> np.ndarray:
    """Screen-transfer-like automatic stretch to [0, 1] (see the module docstring).

    ``linked`` uses one set of parameters for all colour planes (keeps the colour balance);
    unlinked stretches each plane on its own statistics (neutralises a colour cast).
    """
    planes = _normalised(_planes(image))
    medians, madn = (np.array(v) for v in zip(*(median_sigma(_sample(p)) for p in planes), strict=True))
    if linked:
        medians = np.full_like(medians, medians.mean())
        madn = np.full_like(madn, madn.mean())
    out = np.empty_like(planes)
    for i, (p, med, dev) in enumerate(zip(planes, medians, madn, strict=True)):
        c0 = float(np.clip(med + shadows_clip * dev, 0.0, 1.0)) if dev > 0 else 0.0
        background = (med - c0) / (1.0 - c0) if c0 < 1 else 0.5
        m = float(mtf(target_background, np.array(background))) if 0 < background < 1 else 0.5
        out[i] = mtf(m, np.clip((p - c0) / max(1.0 - c0, 1e-12), 0.0, 1.0))
    return out if np.ndim(image) == 3 else out[0]


def asinh_stretch(image: np.ndarray, black: float | None = None, white: float | None = None,
                  softening: float = 0.02) -> np.ndarray:
    """Arcsinh stretch to [0, 1]: ``asinh(x / softening) / asinh(1 / softening)``.

    ``x`` is the image scaled to [0, 1] between ``black`` (default: median - 2.8 MADN of the
    first plane) and ``white`` (default: the 99.98th percentile); ``softening`` sets where the
    response turns from linear to logarithmic (smaller is stronger).
    """
    planes = _planes(image)
    sample = _sample(np.nan_to_num(planes[0], nan=np.nanmedian(planes[0])))
    if black is None:
        med, madn = median_sigma(sample)
        black = med - 2.8 * madn
    if white is None:
        white = float(np.percentile(np.concatenate([_sample(np.nan_to_num(p)) for p in planes]), 99.98))
    span = white - black if white > black else 1.0
    x = np.clip((np.nan_to_num(planes, nan=black) - black) / span, 0.0, 1.0)
    out = (np.arcsinh(x / softening) / np.arcsinh(1.0 / softening)).astype(np.float32)
    return out if np.ndim(image) == 3 else out[0]


def linear_stretch(image: np.ndarray) -> np.ndarray:
    """Min-to-max linear scaling to [0, 1]."""
    out = _normalised(_planes(image))
    return out if np.ndim(image) == 3 else out[0]


STRETCHES = {"auto": auto_stretch, "asinh": asinh_stretch, "linear": linear_stretch}


def thumbnail(image: np.ndarray, max_size: int) -> np.ndarray:
    """Downscale by averaging blocks so the longer side is at most ``max_size`` px."""
    planes = _planes(image)
    ny, nx = planes.shape[1:]
    k = int(np.ceil(max(ny, nx) / max(int(max_size), 1)))
    if k <= 1:
        return image
    ny2, nx2 = ny // k * k, nx // k * k
    small = np.nanmean(planes[:, :ny2, :nx2].reshape(len(planes), ny2 // k, k, nx2 // k, k), axis=(2, 4))
    return small.astype(np.float32) if np.ndim(image) == 3 else small[0].astype(np.float32)


def quantise(display: np.ndarray, bits: int) -> np.ndarray:
    """[0, 1] floats to unsigned integers of ``bits`` (8 or 16), rounded."""
    if bits not in (8, 16):
        raise PipelineError(f"bit depth must be 8 or 16, not {bits}")
    top = (1 << bits) - 1
    return np.rint(np.clip(display, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)


def _png_bytes(pixels: np.ndarray) -> bytes:
    """A PNG file (8/16-bit grey or RGB) from (ny, nx) or (ny, nx, 3) unsigned pixels."""
    ny, nx = pixels.shape[:2]
    colour_type = 2 if pixels.ndim == 3 else 0
    depth = 16 if pixels.dtype == np.uint16 else 8
    raw = pixels.astype(">u2" if depth == 16 else "u1").reshape(ny, -1).view(np.uint8)
    # Filter type 1 (Sub) on each row: differences compress far better than raw pixels.
    bpp = (3 if colour_type == 2 else 1) * depth // 8
    rows = raw.astype(np.int16)
    rows[:, bpp:] -= raw[:, :-bpp]
    filtered = np.hstack([np.ones((ny, 1), np.uint8), (rows & 0xFF).astype(np.uint8)])

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", nx, ny, depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(filtered.tobytes(), 6)) + chunk(b"IEND", b""))


def _display_pixels(display: np.ndarray, bits: int, flip: bool) -> np.ndarray:
    """(ny, nx) or (ny, nx, 3) unsigned pixels of a [0, 1] display image, top row first."""
    planes = _planes(display)
    if flip:
        planes = planes[:, ::-1]
    pixels = np.moveaxis(planes, 0, -1) if len(planes) == 3 else planes[0]
    return np.ascontiguousarray(quantise(pixels, bits))


def png_bytes(display: np.ndarray, bits: int = 8, flip: bool = True) -> bytes:
    """A [0, 1] display image (2-D or 3 planes) as PNG file contents, for serving from memory."""
    return _png_bytes(_display_pixels(display, bits, flip))


def save_display(path: str | Path, display: np.ndarray, bits: int = 8, flip: bool = True, quality: int = 90) -> Path:
    """Write a [0, 1] display image (2-D or 3 planes) as PNG (8/16-bit), JPEG (8-bit) or TIFF (8/16-bit)."""
    path = Path(path)
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise PipelineError(f"{path.name}: unknown image type; use .png, .jpg or .tif")
    if kind == "jpeg" and bits != 8:
        raise PipelineError("JPEG holds 8 bits per channel; use PNG or TIFF for 16")
    pixels = _display_pixels(display, bits, flip)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "png":
            path.write_bytes(_png_bytes(pixels))
        elif kind == "jpeg":
            from PIL import Image

            Image.fromarray(pixels).save(path, quality=quality)
        else:
            import tifffile

            tifffile.imwrite(path, pixels, photometric="rgb" if pixels.ndim == 3 else "minisblack")
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def render(image: np.ndarray, path: str | Path, stretch: str = "auto", bits: int = 8,
           max_size: int | None = None, flip: bool = True) -> Path:
    """Stretch a linear image and write it as a preview (see :func:`save_display`).

    ``max_size`` (px) makes a thumbnail of that longest side before stretching.
    """
    if stretch not in STRETCHES:
        raise PipelineError(f"unknown stretch {stretch!r}; choose one of {', '.join(STRETCHES)}")
    data = thumbnail(image, max_size) if max_size else image
    return save_display(path, STRETCHES[stretch](data), bits=bits, flip=flip)
