"""Where frames and their products live: the ``frames`` storage (local disk or S3).

Keys are content-addressed per network (``frames/<network id>/<sha256[:2]>/<sha256>.fits``),
so a re-upload of the same bytes lands on the same key and a worker on any machine finds a
frame from its row alone. Workers read frames through a scratch copy on their local disk
(`local_copy`), the only local storage a task relies on; with the filesystem backend the
stored file is read in place.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import BinaryIO

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import Storage, storages

FRAMES_ALIAS = "frames"
HASH_CHUNK = 1 << 20


class StorageUnavailable(Exception):
    """The frame storage did not answer (a transient failure: retry later)."""


def frame_storage() -> Storage:
    return storages[FRAMES_ALIAS]


def is_s3(storage: Storage | None = None) -> bool:
    """True when frames go to an S3-compatible store (pre-signed uploads are possible)."""
    storage = storage or frame_storage()
    return hasattr(storage, "bucket_name") and hasattr(storage, "connection")


def frame_key(network_id: int, sha256: str, suffix: str = ".fits") -> str:
    return f"frames/{network_id}/{sha256[:2]}/{sha256}{suffix}"


def product_key(network_id: int, sha256: str, kind: str) -> str:
    """Key of a derived product of a frame (``preview``, ``thumbnail``)."""
    return f"products/{network_id}/{sha256[:2]}/{sha256}.{kind}.png"


def staging_key(network_id: int) -> str:
    return f"uploads/{network_id}/{uuid.uuid4().hex}.fits"


def sha256_of(handle: BinaryIO) -> str:
    """Hex SHA-256 of an open binary file, read in chunks from the start."""
    digest = hashlib.sha256()
    handle.seek(0)
    for chunk in iter(lambda: handle.read(HASH_CHUNK), b""):
        digest.update(chunk)
    handle.seek(0)
    return digest.hexdigest()


def save_file(key: str, handle: BinaryIO) -> str:
    """Store an open file under exactly ``key`` (overwriting: keys are content-addressed)."""
    storage = frame_storage()
    handle.seek(0)
    if not is_s3(storage) and storage.exists(key):
        storage.delete(key)  # FileSystemStorage would otherwise pick another name
    stored = storage.save(key, File(handle, name=os.path.basename(key)))
    if stored != key:
        raise RuntimeError(f"the frame storage stored {key!r} as {stored!r}; it must keep keys as given")
    return stored


def save_bytes(key: str, data: bytes) -> str:
    storage = frame_storage()
    if not is_s3(storage) and storage.exists(key):
        storage.delete(key)
    return storage.save(key, ContentFile(data, name=os.path.basename(key)))


def delete_quietly(key: str) -> None:
    if key:
        with contextlib.suppress(Exception):
            frame_storage().delete(key)


def scratch_dir() -> Path:
    path = Path(settings.DATAS_SCRATCH_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_copy(key: str, sha256: str) -> Path:
    """A path on this machine holding the stored file ``key`` (scratch copy when remote).

    The filesystem backend's own file is returned as is. From S3 the file is downloaded
    once into the scratch directory (atomically, so concurrent workers never read half a
    file) and reused by the later stages of the same frame.
    """
    storage = frame_storage()
    if not is_s3(storage):
        return Path(storage.path(key))
    target = scratch_dir() / f"{sha256}{Path(key).suffix}"
    if target.is_file():
        os.utime(target)
        return target
    _prune_scratch()
    handle, partial = tempfile.mkstemp(dir=target.parent, prefix=".part-")
    try:
        with os.fdopen(handle, "wb") as out, storage.open(key, "rb") as source:
            shutil.copyfileobj(source, out, HASH_CHUNK)
        os.replace(partial, target)
    except Exception as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
        if _is_missing(exc):
            raise FileNotFoundError(f"{key} is not in the frame storage") from exc
        raise StorageUnavailable(f"could not read {key} from the frame storage: {exc}") from exc
    return target


def _is_missing(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""
    return isinstance(exc, FileNotFoundError) or code in {"404", "NoSuchKey", "NotFound"}


def _prune_scratch() -> None:
    """Keep the scratch directory under ``DATAS_SCRATCH_MAX_BYTES``, oldest use first."""
    limit = settings.DATAS_SCRATCH_MAX_BYTES
    files = [p for p in scratch_dir().iterdir() if p.is_file() and not p.name.startswith(".part-")]
    stats = [(p, p.stat()) for p in files]
    total = sum(s.st_size for _, s in stats)
    for path, stat in sorted(stats, key=lambda item: item[1].st_mtime):
        if total <= limit:
            break
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            total -= stat.st_size


def presigned_put(key: str, size_bytes: int, expires_s: int) -> dict:
    """A pre-signed PUT of ``key`` on S3: ``{"url", "method", "headers"}`` for the client."""
    storage = frame_storage()
    client = storage.connection.meta.client
    url = client.generate_presigned_url(
        "put_object", Params={"Bucket": storage.bucket_name, "Key": _full_key(storage, key),
                              "ContentType": "application/fits"},
        ExpiresIn=expires_s, HttpMethod="PUT")
    return {"url": url, "method": "PUT", "headers": {"Content-Type": "application/fits"}}


def download_url(key: str, expires_s: int = 600) -> str:
    """A time-limited URL to fetch a stored file directly from S3."""
    return frame_storage().url(key, expire=expires_s)


def move(source: str, destination: str) -> None:
    """Move a stored object (server-side copy on S3, then delete the source)."""
    storage = frame_storage()
    if is_s3(storage):
        client = storage.connection.meta.client
        client.copy_object(Bucket=storage.bucket_name, Key=_full_key(storage, destination),
                           CopySource={"Bucket": storage.bucket_name, "Key": _full_key(storage, source)})
        storage.delete(source)
        return
    with storage.open(source, "rb") as handle:
        save_file(destination, handle)
    storage.delete(source)


def _full_key(storage: Storage, key: str) -> str:
    location = getattr(storage, "location", "") or ""
    return f"{location.rstrip('/')}/{key}" if location else key
