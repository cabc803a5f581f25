"""Is this file a complete, readable FITS image? Checked before anything is stored.

Three checks, each with a message a user can act on: the first bytes are the FITS
signature (and if not, what the file looks like instead: PNG, JPEG, gzip, XISF, ...); every
HDU's data, by the size its header declares (FITS standard section 4.4.1.1), and its
padding to a whole 2880-byte block lie inside the file, which is how a truncated upload
shows; and the image itself decodes (including
tile-compressed ``.fz``) to a 2-D image or three colour planes.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning

from datas_pipeline.errors import FrameReadError
from datas_pipeline.io.fits import read_frame

BLOCK = 2880
SIGNATURE = b"SIMPLE  ="
# What a file is when it is not FITS, by its first bytes.
OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"\x1f\x8b", "gzip-compressed (send the plain .fits or a tile-compressed .fz instead)"),
    (b"BZh", "bzip2-compressed (send the plain .fits or a tile-compressed .fz instead)"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"XISF0100", "an XISF image (PixInsight); export it as FITS"),
    (b"SIMPLE", "FITS-like but its first card is malformed"),
    (b"%PDF", "a PDF document"),
    (b"{", "JSON text"),
    (b"<", "XML or HTML text"),
)
MAX_HDUS = 256


@dataclass(frozen=True)
class FitsSummary:
    """What the check found: image HDUs, the image's shape and BITPIX, its header, and the
    share of its pixels that are finite numbers."""

    hdus: int
    shape: tuple[int, ...]
    bitpix: int
    compressed: bool
    header: fits.Header
    finite_fraction: float


def describe_signature(head: bytes) -> str | None:
    """None when ``head`` starts like a FITS file, else what it looks like, in words."""
    if head.startswith(SIGNATURE) and len(head) >= 30 and head[29:30] == b"T":
        return None
    if not head:
        return "the file is empty"
    if head.startswith(SIGNATURE) and head[29:30] == b"F":
        return "the file declares itself non-conforming FITS (SIMPLE = F)"
    for magic, name in OTHER_FORMATS:
        if head.startswith(magic):
            return f"not a FITS file: it is {name}"
    return "not a FITS file: it does not start with 'SIMPLE  =' (the FITS signature)"


BITPIX_VALUES = (8, 16, 32, 64, -32, -64)
MAX_NAXIS = 999  # FITS 4.4.1.1


def check_structure(header: fits.Header, index: int) -> None:
    """Refuse structural keywords the FITS standard (4.4.1) does not allow, naming the keyword.

    Done before any size is computed from them: a negative NAXISn would otherwise send the
    reader to a negative file offset, and BITPIX 12 to a wrong data size.
    """
    def whole(keyword: str, default: int | None = None) -> int:
        value = header.get(keyword, default)
        if value is None:
            raise FrameReadError(f"HDU {index}: the {keyword} keyword is missing")
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise FrameReadError(f"HDU {index}: {keyword} = {value!r} is not a whole number")
        return int(value)

    bitpix = whole("BITPIX")
    if bitpix not in BITPIX_VALUES:
        raise FrameReadError(f"HDU {index}: BITPIX = {bitpix} is not one FITS allows "
                             f"({', '.join(map(str, BITPIX_VALUES))})")
    naxis = whole("NAXIS")
    if not 0 <= naxis <= MAX_NAXIS:
        raise FrameReadError(f"HDU {index}: NAXIS = {naxis} is outside 0..{MAX_NAXIS}")
    for axis in range(1, naxis + 1):
        length = whole(f"NAXIS{axis}")
        if length < 0:
            raise FrameReadError(f"HDU {index}: NAXIS{axis} = {length} is negative")
    if whole("GCOUNT", 1) < 0 or whole("PCOUNT", 0) < 0:
        raise FrameReadError(f"HDU {index}: GCOUNT and PCOUNT must not be negative")
    for keyword in ("BSCALE", "BZERO"):
        value = header.get(keyword)
        if value is not None and (isinstance(value, bool | str) or not math.isfinite(float(value))):
            raise FrameReadError(f"HDU {index}: {keyword} = {value!r} is not a finite number")


def _data_bytes(header: fits.Header) -> int:
    """Bytes of data an HDU's header declares, without padding (FITS 4.4.1.1)."""
    naxis = int(header.get("NAXIS", 0))
    if naxis == 0:
        return 0
    axes = [int(header.get(f"NAXIS{i}", 0)) for i in range(1, naxis + 1)]
    bits = abs(int(header.get("BITPIX", 8)))
    gcount, pcount = int(header.get("GCOUNT", 1)), int(header.get("PCOUNT", 0))
    if "XTENSION" not in header and header.get("GROUPS", False):
        axes = axes[1:]  # random groups: NAXIS1 = 0
    return bits // 8 * gcount * (pcount + math.prod(axes))


def _image_kind(header: fits.Header) -> tuple[int, bool] | None:
    """(BITPIX, compressed) when the HDU holds an image of two or more axes, else None."""
    compressed = bool(header.get("ZIMAGE", False))
    naxis = int(header.get("ZNAXIS" if compressed else "NAXIS", 0))
    if naxis >= 2 and (compressed or str(header.get("XTENSION", "IMAGE")).strip() == "IMAGE"):
        return int(header.get("ZBITPIX" if compressed else "BITPIX", 0)), compressed
    return None


def check_fits_file(path: str | Path) -> FitsSummary:
    """Check ``path`` is a complete FITS file with a readable image; describe it.

    Raises
    ------
    FrameReadError
        With what is wrong: not FITS (and what it is instead), a header without its END
        card, data cut short (how many bytes are missing), or no decodable image.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as handle:
        head = handle.read(BLOCK)
    problem = describe_signature(head)
    if problem:
        raise FrameReadError(problem)
    if size < BLOCK:
        raise FrameReadError(f"the file is truncated: {size} bytes, but a FITS header alone takes "
                             f"at least {BLOCK}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AstropyUserWarning)
        images = _walk(path, size)
    frame = read_frame(path)  # decodes the pixels: corrupt compressed tiles show here
    bitpix, compressed = images[0]
    return FitsSummary(hdus=len(images), shape=tuple(frame.data.shape), bitpix=bitpix,
                       compressed=compressed, header=frame.header, finite_fraction=finite_fraction(frame.data))


def _walk(path: Path, size: int) -> list[tuple[int, bool]]:
    """(BITPIX, compressed) of each image HDU, checking every HDU's data lies in the file.

    The headers are read as written on disk (a compressed image's is its binary table's),
    so the declared data size is the one the file must hold.
    """
    images = []
    offset = 0
    with open(path, "rb") as handle:
        for index in range(MAX_HDUS + 1):
            if offset >= size:
                break
            handle.seek(offset)
            try:
                header = fits.Header.fromfile(handle, padding=True)
            except (OSError, ValueError, EOFError) as exc:
                if index == 0 or "END" in str(exc) or offset + BLOCK > size:
                    raise FrameReadError(f"HDU {index}: the header is incomplete (no END card): the file "
                                         f"is truncated or damaged ({exc})") from None
                break  # trailing bytes after the last HDU that are not a header: ignored
            data_start = handle.tell()
            check_structure(header, index)
            try:
                data_bytes = _data_bytes(header)
                kind = _image_kind(header)
            except (TypeError, ValueError) as exc:  # e.g. NAXIS1 = 'abc'
                raise FrameReadError(f"HDU {index}: a structural keyword is not a whole number ({exc})") from None
            end = data_start + data_bytes
            if end > size:
                raise FrameReadError(f"the file is truncated: HDU {index} declares data up to byte {end:,} but "
                                     f"the file has {size:,} bytes ({end - size:,} missing)")
            padded = data_start + -(-data_bytes // BLOCK) * BLOCK
            if padded > size:
                raise FrameReadError(f"the file is truncated: HDU {index}'s data is whole but the padding FITS "
                                     f"requires to byte {padded:,} is missing (the file has {size:,} bytes)")
            if kind is not None:
                images.append(kind)
            offset = padded
        else:
            raise FrameReadError(f"more than {MAX_HDUS} HDUs: not a single frame")
    if not images:
        raise FrameReadError("no image data in any HDU (a table-only or empty FITS file)")
    return images


def finite_fraction(data: np.ndarray) -> float:
    """Share of pixels that are finite numbers (a frame of NaN is no frame)."""
    return float(np.isfinite(data).mean()) if data.size else 0.0
