"""Crash-safe file writes: a file is either absent or complete, never half written.

The bytes go to a temporary file in the same directory, are fsync'ed, renamed over the final
name (atomic on POSIX and on NTFS through ``os.replace``) and the directory entry is fsync'ed
too, so a power cut at any instant leaves the old state or the new one.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where unsupported)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # Windows cannot open directories; NTFS journals the rename itself.
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | Path, data: bytes) -> str:
    """Write ``data`` to ``path`` durably and atomically; return its SHA-256 (hex)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    fsync_directory(path.parent)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    """SHA-256 (hex) of a file's contents, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remove_partial_files(directory: Path) -> int:
    """Delete temporary ``*.part`` files a crash left behind; return how many."""
    removed = 0
    if directory.is_dir():
        for leftover in directory.rglob(".*.part"):  # frames live in dated sub-folders
            with contextlib.suppress(OSError):
                leftover.unlink()
                removed += 1
    return removed
