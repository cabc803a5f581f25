"""FITS reading and writing for every stage: one place that knows the file formats.

``read_frame`` returns the image as float32 in numpy order (``data[y, x]``): 2-D for mono
and raw one-shot-colour mosaics, ``(3, ny, nx)`` for colour planes (or a debayered mosaic).
8/16/32-bit integers (with BZERO/BSCALE, e.g. unsigned 16-bit) and 32/64-bit floats are
read; tile-compressed ``.fz`` images and multi-extension files too, an extension inheriting
the primary header's keywords (the INHERIT convention). Large uncompressed frames are read
through a memory map; ``iter_row_bands`` streams a frame in row bands so a stack of 4k
frames never has to be in memory at once.
"""
from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.utils.exceptions import AstropyUserWarning
from scipy import ndimage

from datas_pipeline.errors import FrameReadError, PipelineError

BAYER_PATTERNS = ("RGGB", "BGGR", "GRBG", "GBRG")
# File name endings of FITS images, compared case-blind (cameras write A1.FIT); ".fz" covers
# tile-compressed ".fits.fz".
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fz")
# Keywords that describe the layout of an HDU itself: never inherited by an extension, never
# copied from a frame's header into a product's.
STRUCTURAL_KEYWORDS = frozenset({
    "SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "EXTEND", "XTENSION", "PCOUNT",
    "GCOUNT", "BZERO", "BSCALE", "BLANK", "CHECKSUM", "DATASUM", "EXTNAME", "EXTVER", "INHERIT",
    "COMMENT", "HISTORY", "",
})


@dataclass
class Frame:
    """An image and its header. ``path`` is where it came from, if anywhere.

    ``bayer_pattern`` is the colour-filter mosaic (e.g. "RGGB") of a raw one-shot-colour
    frame as read, aligned to ``data[0, 0]``; None for mono, colour planes or debayered data.
    """

    data: np.ndarray
    header: fits.Header = field(default_factory=fits.Header)
    path: Path | None = None
    bayer_pattern: str | None = None


def is_fits_path(path: str | Path) -> bool:
    """Whether a file name ends like a FITS image (:data:`FITS_SUFFIXES`, any case)."""
    return Path(path).name.lower().endswith(FITS_SUFFIXES)


def _image_hdus(hdul: fits.HDUList) -> list[int]:
    return [i for i, hdu in enumerate(hdul) if hdu.is_image and hdu.header.get("NAXIS", 0) >= 2]


def merged_header(hdul: fits.HDUList, index: int) -> fits.Header:
    """The header of HDU ``index`` with the primary header's keywords it inherits (INHERIT)."""
    header = hdul[index].header.copy()
    if index == 0 or header.get("INHERIT", True) is False:
        return header
    # Observation keywords (DATE-OBS, EXPTIME, ...) often live only in the primary header.
    for card in hdul[0].header.cards:
        if card.keyword not in STRUCTURAL_KEYWORDS and card.keyword not in header:
            header.append(card)
    return header


def _open(path: Path, memmap: bool) -> fits.HDUList:
    if not path.is_file():
        raise FrameReadError(f"{path}: no such file")
    try:
        # memmap=None maps the file where astropy can (it cannot for scaled integers, which
        # memmap=True turns into an error).
        return fits.open(path, memmap=None if memmap else False, lazy_load_hdus=False)
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FrameReadError(f"{path}: not a readable FITS file ({exc})") from None


def select_image_hdu(hdul: fits.HDUList, hdu: int | str | None, path: Path) -> int:
    """Index of HDU ``hdu`` (index or EXTNAME), or of the first with 2-D or 3-D image data.

    Raises
    ------
    FrameReadError
        There is no such HDU, or it (or every HDU) holds no image.
    """
    images = _image_hdus(hdul)
    if hdu is None:
        if not images:
            raise FrameReadError(f"{path}: no image data in any HDU")
        return images[0]
    try:
        index = hdul.index_of(hdu)
    except (KeyError, IndexError):
        raise FrameReadError(f"{path}: there is no HDU {hdu!r} (it has {len(hdul)})") from None
    if index not in images:
        raise FrameReadError(f"{path}: HDU {hdu!r} holds no image data")
    return index


def read_frame(
    path: str | Path, hdu: int | str | None = None, memmap: bool = True, debayer: bool = False
) -> Frame:
    """Read an image HDU (the first with 2-D or 3-D data unless ``hdu`` names one).

    Parameters
    ----------
    path : str or Path
        A FITS file (``.fits``, ``.fit``, ``.fts``, tile-compressed ``.fz``).
    hdu : int or str, optional
        Index or EXTNAME of the HDU to read.
    memmap : bool
        Map the file instead of reading it (uncompressed files only), so converting a large
        frame to float32 costs one copy.
    debayer : bool
        Interpolate a one-shot-colour mosaic (BAYERPAT/COLORTYP keyword) to ``(3, ny, nx)``.

    Raises
    ------
    FrameReadError
        The file is missing, not FITS, truncated, or holds no image.
    """
    path = Path(path)
    data, header = _read_hdu(path, hdu, memmap)
    data = np.squeeze(data) if data.ndim > 3 else data
    if data.ndim == 3 and data.shape[0] == 1:
        data = data[0]
    if data.ndim not in (2, 3) or (data.ndim == 3 and data.shape[0] != 3):
        raise FrameReadError(f"{path}: expected a 2-D image or 3 colour planes, got shape {data.shape}")
    if data.size == 0:
        raise FrameReadError(f"{path}: the image is empty")
    pattern = bayer_pattern(header) if data.ndim == 2 else None
    if debayer and pattern:
        return Frame(data=debayer_bilinear(data, pattern), header=header, path=path)
    return Frame(data=data, header=header, path=path, bayer_pattern=pattern)


def _read_hdu(path: Path, hdu: int | str | None, memmap: bool) -> tuple[np.ndarray, fits.Header]:
    # Non-standard cards are common in capture software and harmless; truncation is not, and
    # astropy only warns about it, so it is turned into an error here.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", AstropyUserWarning)
        hdul = _open(path, memmap)
        try:
            index = select_image_hdu(hdul, hdu, path)
            header = merged_header(hdul, index)
            data = np.asarray(hdul[index].data, dtype=np.float32)
        except (OSError, ValueError, TypeError, IndexError, KeyError, AttributeError) as exc:
            raise FrameReadError(f"{path}: the image data is unreadable or truncated ({exc})") from None
        finally:
            hdul.close()
    truncated = [w for w in caught if "truncated" in str(w.message)]
    if truncated:
        raise FrameReadError(f"{path}: the file is truncated ({truncated[0].message})")
    return data, header


def read_header(path: str | Path, hdu: int | str | None = None) -> fits.Header:
    """The header of the image HDU :func:`read_frame` would read, without the pixels.

    For a tile-compressed ``.fz`` or multi-extension file this is the image extension's
    header with the primary's inherited keywords (FILTER, EXPTIME, ... often live there).

    Raises
    ------
    FrameReadError
        The file is missing, not FITS, or holds no image.
    """
    path = Path(path)
    hdul = _open(path, memmap=True)
    try:
        return merged_header(hdul, select_image_hdu(hdul, hdu, path))
    except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
        raise FrameReadError(f"{path}: the header is unreadable ({exc})") from None
    finally:
        hdul.close()


def read_mef(path: str | Path) -> list[Frame]:
    """Every image HDU of a multi-extension file, each with its inherited header."""
    path = Path(path)
    hdul = _open(path, memmap=True)
    try:
        indices = _image_hdus(hdul)
    finally:
        hdul.close()
    if not indices:
        raise FrameReadError(f"{path}: no image data in any HDU")
    return [read_frame(path, hdu=i) for i in indices]


def frame_shape(path: str | Path, hdu: int | str | None = None) -> tuple[int, ...]:
    """The image shape ``(ny, nx)`` (or ``(3, ny, nx)``) without reading the pixels."""
    path = Path(path)
    hdul = _open(path, memmap=True)
    try:
        image_hdu = hdul[select_image_hdu(hdul, hdu, path)]
        header = image_hdu.header
        naxis = header.get("ZNAXIS", header["NAXIS"])
        key = "ZNAXIS" if "ZNAXIS" in header else "NAXIS"
        return tuple(int(header[f"{key}{i}"]) for i in range(naxis, 0, -1))
    finally:
        hdul.close()


def iter_row_bands(
    path: str | Path, band_rows: int = 256, hdu: int | str | None = None
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield ``(row_slice, float32 band)`` over a 2-D image without loading all of it.

    The file is opened once; each band is read through ``section`` (a memory map for plain
    files, tile decompression for ``.fz``).
    """
    path = Path(path)
    hdul = _open(path, memmap=True)
    try:
        image_hdu = hdul[select_image_hdu(hdul, hdu, path)]
        ny = image_hdu.shape[-2]
        if len(image_hdu.shape) != 2:
            raise FrameReadError(f"{path}: band reading needs a 2-D image, got shape {image_hdu.shape}")
        for start in range(0, ny, band_rows):
            rows = slice(start, min(start + band_rows, ny))
            try:
                band = np.asarray(image_hdu.section[rows, :], dtype=np.float32)
            except (OSError, ValueError, TypeError, IndexError) as exc:
                raise FrameReadError(f"{path}: the image data is unreadable or truncated ({exc})") from None
            yield rows, band
    finally:
        hdul.close()


def write_frame(
    path: str | Path,
    data: np.ndarray,
    header: fits.Header | None = None,
    dtype: np.dtype | type = np.float32,
    overwrite: bool = False,
) -> Path:
    """Write ``data`` with ``header`` and return the path.

    A ``.fz`` suffix writes a tile-compressed image extension (Rice for integers, lossless
    GZIP_2 for floats). Integer ``dtype`` (e.g. ``np.uint16``) rounds and clips to its range;
    unsigned 16-bit gets the standard BZERO = 32768.
    """
    path = Path(path)
    array = np.asarray(data)
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        array = np.clip(np.rint(np.nan_to_num(array)), info.min, info.max)
    array = array.astype(dtype)
    header = header.copy() if header is not None else fits.Header()
    for key in ("BZERO", "BSCALE", "BLANK"):
        header.remove(key, ignore_missing=True, remove_all=True)
    if path.suffix == ".fz":
        compression = "RICE_1" if dtype.kind in "iu" else "GZIP_2"
        hdul = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(array, header=header, compression_type=compression,
                                                                   quantize_level=0.0)])
    else:
        hdul = fits.HDUList([fits.PrimaryHDU(array, header=header)])
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        hdul.writeto(path, overwrite=overwrite)
    except OSError as exc:
        raise PipelineError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def bayer_pattern(header: fits.Header) -> str | None:
    """The mosaic pattern aligned to pixel (0, 0), from BAYERPAT/COLORTYP and the offsets.

    XBAYROFF/YBAYROFF (or BAYOFFX/BAYOFFY) shift the pattern, as MaxIm DL, N.I.N.A. and
    ASCOM write them. None when the header declares no mosaic.
    """
    raw = header.get("BAYERPAT", header.get("COLORTYP"))
    if not isinstance(raw, str):
        return None
    pattern = raw.strip().upper()
    if pattern not in BAYER_PATTERNS:
        return None
    dx = int(header.get("XBAYROFF", header.get("BAYOFFX", 0)) or 0) % 2
    dy = int(header.get("YBAYROFF", header.get("BAYOFFY", 0)) or 0) % 2
    grid = [[pattern[0], pattern[1]], [pattern[2], pattern[3]]]
    shifted = [[grid[(r + dy) % 2][(c + dx) % 2] for c in range(2)] for r in range(2)]
    return "".join(shifted[0] + shifted[1])


def bayer_masks(shape: tuple[int, int], pattern: str) -> dict[str, np.ndarray]:
    """Boolean masks of the R, G and B photosites for a mosaic ``pattern`` at pixel (0, 0)."""
    pattern = pattern.upper()
    if pattern not in BAYER_PATTERNS:
        raise PipelineError(f"unknown Bayer pattern {pattern!r}; expected one of {', '.join(BAYER_PATTERNS)}")
    masks = {c: np.zeros(shape, dtype=bool) for c in "RGB"}
    for i, colour in enumerate(pattern):
        masks[colour][i // 2::2, i % 2::2] = True
    return masks


_KERNEL_RB = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 4.0
_KERNEL_G = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], dtype=np.float64) / 4.0


def debayer_bilinear(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Bilinear demosaic of a raw one-shot-colour frame to ``(3, ny, nx)`` float32 (R, G, B).

    Each plane keeps its measured photosites unchanged and interpolates the others from the
    nearest same-colour neighbours; edges use only the neighbours that exist (normalised
    convolution), so a uniform field stays exactly uniform.
    """
    mosaic = np.asarray(mosaic, dtype=np.float32)
    if mosaic.ndim != 2:
        raise PipelineError(f"a Bayer mosaic must be 2-D, got shape {mosaic.shape}")
    masks = bayer_masks(mosaic.shape, pattern)
    # float32 and one plane at a time: the output plus a few plane-sized temporaries, not
    # a float64 copy of everything (a 6k x 4k mosaic would need ~1 GB more).
    rgb = np.empty((3, *mosaic.shape), dtype=np.float32)
    for plane, colour in zip(rgb, "RGB", strict=True):
        kernel = (_KERNEL_G if colour == "G" else _KERNEL_RB).astype(np.float32)
        weight = masks[colour].astype(np.float32)
        num = ndimage.convolve(mosaic * weight, kernel, mode="constant")
        den = ndimage.convolve(weight, kernel, mode="constant")
        np.divide(num, np.maximum(den, np.float32(1e-12)), out=plane)
        plane[masks[colour]] = mosaic[masks[colour]]
    return rgb


def debayer_superpixel(mosaic: np.ndarray, pattern: str) -> np.ndarray:
    """Half-resolution demosaic: each 2x2 cell gives one RGB pixel (G is the mean of two).

    No interpolation, so fluxes stay exact: the choice for photometry on colour cameras.
    Returns ``(3, ny // 2, nx // 2)`` float32.
    """
    mosaic = np.asarray(mosaic, dtype=np.float64)
    ny, nx = (mosaic.shape[0] // 2) * 2, (mosaic.shape[1] // 2) * 2
    cells = {k: mosaic[i // 2:ny:2, i % 2:nx:2] for i, k in enumerate(range(4))}
    out = {"R": 0.0, "G": 0.0, "B": 0.0}
    for i, colour in enumerate(pattern.upper()):
        out[colour] = out[colour] + cells[i] * (0.5 if colour == "G" else 1.0)
    return np.stack([out["R"], out["G"], out["B"]]).astype(np.float32)
