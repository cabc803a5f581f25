"""FITS reading and writing for every stage: one place that knows the file formats.

``read_frame`` returns the image as float32 in numpy order (``data[y, x]``): 2-D for mono,
``(3, ny, nx)`` for colour planes. ``write_frame`` writes float32 unless told otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits

from pipeline.errors import FrameReadError


@dataclass
class Frame:
    """An image and its header. ``path`` is where it came from, if anywhere."""

    data: np.ndarray
    header: fits.Header = field(default_factory=fits.Header)
    path: Path | None = None


def _first_image_hdu(hdul: fits.HDUList) -> fits.hdu.base.ExtensionHDU:
    for hdu in hdul:
        if hdu.is_image and hdu.data is not None and hdu.data.ndim >= 2:
            return hdu
    raise FrameReadError("no image data in any HDU")


def read_frame(path: str | Path, hdu: int | str | None = None, memmap: bool = True) -> Frame:
    """Read an image HDU (the first with 2-D or 3-D data unless ``hdu`` names one).

    Raises
    ------
    FrameReadError
        The file is missing, not FITS, truncated, or holds no image.
    """
    path = Path(path)
    if not path.is_file():
        raise FrameReadError(f"{path}: no such file")
    try:
        with fits.open(path, memmap=memmap) as hdul:
            image_hdu = hdul[hdu] if hdu is not None else _first_image_hdu(hdul)
            if image_hdu.data is None:
                raise FrameReadError(f"{path}: HDU {hdu!r} has no data")
            data = np.array(image_hdu.data, dtype=np.float32)
            header = image_hdu.header.copy()
    except FrameReadError as exc:
        raise FrameReadError(f"{path}: {exc}") from None
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FrameReadError(f"{path}: not a readable FITS image ({exc})") from None
    if data.ndim not in (2, 3):
        raise FrameReadError(f"{path}: expected a 2-D or 3-plane image, got shape {data.shape}")
    return Frame(data=data, header=header, path=path)


def write_frame(
    path: str | Path,
    data: np.ndarray,
    header: fits.Header | None = None,
    dtype: np.dtype | type = np.float32,
    overwrite: bool = False,
) -> Path:
    """Write ``data`` as the primary HDU with ``header`` and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fits.PrimaryHDU(np.asarray(data, dtype=dtype), header=header).writeto(path, overwrite=overwrite)
    return path
