"""Walking a share of FITS files and reading each one's header without decoding pixels.

A share holds thousands of frames; reading each once (the bytes are hashed and the header
parsed from the same read) keeps a catalogue pass I/O-bound. Plain and gzipped FITS are
parsed block by block up to the END card; tile-compressed ``.fz`` and files whose primary
HDU holds no image fall back to :func:`datas_pipeline.io.fits.read_header` (the image extension
with the primary's inherited keywords).
"""
from __future__ import annotations

import gzip
import hashlib
import os
import warnings
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from astropy.io import fits
from astropy.io.fits.verify import VerifyWarning

from datas_pipeline.archive.cards import CardMap, parse_cards
from datas_pipeline.errors import FrameReadError
from datas_pipeline.io.fits import read_header
from datas_pipeline.io.fitscheck import describe_signature

# Endings of FITS files on a share, compared case-blind (cameras write LIGHT_001.FIT).
SHARE_SUFFIXES = (".fits", ".fit", ".fts", ".fz", ".fits.gz", ".fit.gz", ".fts.gz")
BLOCK = 2880
CARD = 80
# A header longer than this is not a frame's (guards against reading a corrupt file forever).
MAX_HEADER_BYTES = 2880 * 400
HASH_CHUNK = 1 << 20


@dataclass
class ScannedFile:
    """One file as read from the share: its content hash, size, mtime and image header (as
    text, as parsed cards, and as an astropy header made on first use)."""

    path: Path
    sha256: str
    size_bytes: int
    mtime: float
    text: str
    cards: list
    _header: fits.Header | None = None
    _card_map: CardMap | None = None

    @property
    def header(self) -> fits.Header:
        if self._header is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", VerifyWarning)
                self._header = fits.Header.fromstring(self.text)
        return self._header

    @property
    def card_map(self) -> CardMap:
        if self._card_map is None:
            self._card_map = CardMap(self.cards)
        return self._card_map


def is_share_fits(path: str | Path) -> bool:
    """Whether a file name ends like a FITS frame on a share (:data:`SHARE_SUFFIXES`, any case)."""
    name = Path(path).name.lower()
    return name.endswith(SHARE_SUFFIXES) and not name.startswith(".")


def walk_share(roots: Iterable[str | Path]) -> Iterator[Path]:
    """Every FITS file under ``roots`` (files or folders, recursively), sorted per folder.

    Hidden files and folders (``.something``) are skipped: capture programs write partial
    files there, and NAS snapshots live there.
    """
    for root in roots:
        root = Path(root)
        if root.is_file():
            if is_share_fits(root):
                yield root
            continue
        for folder, dirs, files in os.walk(root):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if is_share_fits(name):
                    yield Path(folder) / name


def _header_from_bytes(blob: bytes, path: Path) -> str | None:
    """The primary header's text from the first blocks of ``blob``, or None when it ends
    beyond what was read."""
    problem = describe_signature(blob[:CARD])
    if problem:
        raise FrameReadError(f"{path}: {problem}")
    for end in range(BLOCK, min(len(blob), MAX_HEADER_BYTES) + 1, BLOCK):
        block = blob[end - BLOCK:end]
        for i in range(0, BLOCK, CARD):
            if block[i:i + 8] == b"END     ":
                return blob[:end - BLOCK + i].decode("ascii", "replace")
    if len(blob) >= MAX_HEADER_BYTES:
        raise FrameReadError(f"{path}: no END card in the first {MAX_HEADER_BYTES} bytes: not a FITS header")
    return None


def _declared_data_bytes(header: CardMap) -> int:
    naxis = int(header.get("NAXIS", 0) or 0)
    if naxis == 0:
        return 0
    count = 1
    for i in range(1, naxis + 1):
        count *= int(header.get(f"NAXIS{i}", 0) or 0)
    return count * abs(int(header.get("BITPIX", 8))) // 8


def scan_file(path: str | Path) -> ScannedFile:
    """Hash a file and read its image header in one pass over its bytes.

    Raises
    ------
    FrameReadError
        Not FITS, truncated, or no image in any HDU; the message says which.
    """
    path = Path(path)
    try:
        stat = path.stat()
        raw = path.read_bytes()
    except OSError as exc:
        raise FrameReadError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(raw).hexdigest()
    name = path.name.lower()
    if name.endswith(".gz"):
        try:
            blob = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise FrameReadError(f"{path}: the gzip stream is damaged ({exc})") from None
    else:
        blob = raw
    if not blob:
        raise FrameReadError(f"{path}: the file is empty")
    text = None if name.endswith(".fz") else _header_from_bytes(blob, path)
    if text is None and not name.endswith(".fz") and len(blob) < MAX_HEADER_BYTES:
        raise FrameReadError(f"{path}: the file is truncated: it ends ({len(blob):,} bytes) inside its header")
    cards = parse_cards(text) if text is not None else []
    primary = CardMap(cards)
    naxis = primary.get("NAXIS", 0)
    if text is None or not isinstance(naxis, int) or naxis < 2:
        header = _fallback_header(path, blob, name)
        text = header.tostring()
        return ScannedFile(path, digest, stat.st_size, stat.st_mtime, text, parse_cards(text), header)
    needed = -(-(len(text) + CARD) // BLOCK) * BLOCK + _declared_data_bytes(primary)
    if len(blob) < needed:
        raise FrameReadError(f"{path}: the file is truncated ({len(blob):,} bytes, its header declares "
                             f"{needed:,})")
    return ScannedFile(path, digest, stat.st_size, stat.st_mtime, text, cards)


def _fallback_header(path: Path, blob: bytes, name: str) -> fits.Header:
    """Tile-compressed or multi-extension files: astropy finds the image HDU."""
    if name.endswith(".gz"):
        import io

        try:
            with fits.open(io.BytesIO(blob)) as hdul:
                from datas_pipeline.io.fits import merged_header, select_image_hdu

                return merged_header(hdul, select_image_hdu(hdul, None, path))
        except (OSError, ValueError, TypeError, IndexError, KeyError) as exc:
            raise FrameReadError(f"{path}: not a readable FITS file ({exc})") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", VerifyWarning)
        return read_header(path)
