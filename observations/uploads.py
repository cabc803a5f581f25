"""Receiving frames: check everything first, store once, start the pipeline.

Order matters: the size, the checksum the client declared, the FITS structure and the
header are all checked before a byte is written to the frame storage, so a bad upload
leaves nothing behind. A frame whose bytes the network already holds is not stored again:
the stored frame is returned (an agent retrying after a lost response gets its answer).
"""
from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO

from datas_pipeline.errors import FrameReadError
from datas_pipeline.io.fitscheck import FitsSummary, check_fits_file
from datas_pipeline.io.headers import normalise_header
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from observations.frame_header import header_fields, judge_header
from observations.frames import Frame, FrameUpload, UploadState
from observations.models import Observation
from observations.services import Uploader
from observations.storage import (
    delete_quietly,
    frame_key,
    frame_storage,
    is_s3,
    local_copy,
    move,
    presigned_put,
    save_file,
    scratch_dir,
    sha256_of,
    staging_key,
)
from sites.models import Site
from targets.models import Target

log = logging.getLogger(__name__)


class UploadRejected(Exception):
    """An upload that cannot be accepted; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field

    def as_body(self) -> dict:
        if self.field:
            return {self.field: [str(self)]}
        return {"detail": str(self)}


@dataclass(frozen=True)
class Destination:
    """Where an upload belongs: the site, and optionally its target and observation."""

    site: Site
    target: Target | None = None
    observation: Observation | None = None


@dataclass
class StoredFrame:
    frame: Frame
    created: bool
    warnings: list[str] = field(default_factory=list)


def resolve_destination(uploader: Uploader, site_id: int | None, target_id: int | None,
                        observation_id=None) -> Destination:
    """The site, target and observation an upload names, checked against the uploader's scope.

    Ids outside the uploader's networks read as unknown, as everywhere in the API.
    """
    if uploader.site_key is not None:
        if site_id not in (None, uploader.site_key.site_id):
            raise UploadRejected(f"this key belongs to site {uploader.site_key.site_id}; it cannot upload for "
                                 f"another", field="site_id")
        site_id = uploader.site_key.site_id
    if site_id is None:
        raise UploadRejected("give the site_id the frame was taken at", field="site_id")
    site = uploader.sites().select_related("network").filter(pk=site_id).first()
    if site is None:
        raise UploadRejected(f"unknown site {site_id}, or you may not upload for it", field="site_id")
    target = None
    if target_id is not None:
        target = Target.objects.filter(pk=target_id, network_id=site.network_id).first()
        if target is None:
            raise UploadRejected(f"no target {target_id} in network {site.network.slug!r}", field="target_id")
    observation = None
    if observation_id is not None:
        observation = Observation.objects.filter(observation_id=observation_id, site=site).first()
        if observation is None:
            raise UploadRejected(f"no observation {observation_id} of site {site.pk}: post the observation "
                                 f"first, or leave observation_id out", status=404)
        if target is not None and observation.target_id != target.pk:
            raise UploadRejected(f"observation {observation_id} is of target {observation.target_id}, not "
                                 f"{target.pk}", field="target_id")
        target = target or observation.target
    return Destination(site, target, observation)


def check_size(size_bytes: int) -> None:
    limit = settings.DATAS_MAX_FRAME_BYTES
    if size_bytes > limit:
        raise UploadRejected(f"the frame is {size_bytes / 1e6:.1f} MB; this portal accepts frames up to "
                             f"{limit / 1e6:.1f} MB (DATAS_MAX_FRAME_BYTES)", status=413)
    if size_bytes <= 0:
        raise UploadRejected("the file is empty", field="file")


def inspect_frame_file(path: Path) -> tuple[FitsSummary, list[str], dict]:
    """Check a FITS file and its header; return the summary, warnings and frame columns.

    Raises `UploadRejected` (400) saying what is wrong.
    """
    try:
        summary = check_fits_file(path)
    except FrameReadError as exc:
        raise UploadRejected(str(exc).replace(f"{path}: ", ""), field="file") from None
    if summary.finite_fraction < 0.5:
        raise UploadRejected(f"only {100 * summary.finite_fraction:.0f}% of the pixels are numbers (the rest "
                             f"NaN or infinite): not a usable image", field="file")
    info = normalise_header(summary.header)
    verdict = judge_header(info)
    if verdict.errors:
        raise UploadRejected("; ".join(verdict.errors), field="file")
    return summary, verdict.warnings, header_fields(summary, info)


def existing_frame(destination: Destination, sha256: str) -> StoredFrame | None:
    """The network's frame with these bytes, if any; 409 if it belongs elsewhere."""
    frame = Frame.objects.filter(network_id=destination.site.network_id, sha256=sha256).first()
    if frame is None:
        return None
    clashes = []
    if frame.site_id != destination.site.pk:
        clashes.append(f"site {frame.site_id}")
    if destination.observation and frame.observation_id not in (None, destination.observation.pk):
        clashes.append(f"observation {frame.observation.observation_id}")
    if clashes:
        raise UploadRejected(f"these bytes are already stored as frame {frame.pk}, which belongs to "
                             f"{' and '.join(clashes)}; one file cannot be two frames", status=409)
    return StoredFrame(frame, created=False, warnings=[
        f"already stored as frame {frame.pk} (same SHA-256); nothing new was stored"])


def store_frame_file(handle: BinaryIO, size_bytes: int, destination: Destination, uploader: Uploader, *,
                     original_name: str = "", declared_sha256: str | None = None,
                     local_path: Path | None = None) -> StoredFrame:
    """Validate an uploaded file and store it as a frame (or return the stored twin).

    ``local_path`` is the file on this machine when there is one (Django's temporary
    upload file); otherwise the stream is spooled to scratch for the checks.
    """
    check_size(size_bytes)
    sha256 = sha256_of(handle)
    if declared_sha256 and declared_sha256.lower() != sha256:
        raise UploadRejected(f"the file's SHA-256 is {sha256} but {declared_sha256.lower()} was declared: the "
                             f"file changed or was damaged in transit; send it again", field="sha256")
    twin = existing_frame(destination, sha256)
    if twin is not None:
        return twin
    with _as_local_file(handle, local_path) as path:
        _, warnings, columns = inspect_frame_file(path)
    key = frame_key(destination.site.network_id, sha256)
    save_file(key, handle)
    return _record(destination, uploader, sha256=sha256, size_bytes=size_bytes, key=key,
                   original_name=original_name, columns=columns, warnings=warnings)


@contextlib.contextmanager
def _as_local_file(handle: BinaryIO, local_path: Path | None):
    if local_path is not None:
        yield Path(local_path)
        return
    fd, name = tempfile.mkstemp(dir=scratch_dir(), prefix=".upload-", suffix=".fits")
    try:
        with os.fdopen(fd, "wb") as out:
            handle.seek(0)
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                out.write(chunk)
        handle.seek(0)
        yield Path(name)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)


def _record(destination: Destination, uploader: Uploader, *, sha256: str, size_bytes: int, key: str,
            original_name: str, columns: dict, warnings: list[str]) -> StoredFrame:
    frame = Frame(network_id=destination.site.network_id, site=destination.site, target=destination.target,
                  observation=destination.observation, sha256=sha256, size_bytes=size_bytes, storage_key=key,
                  original_name=original_name[:255], uploaded_by=uploader.user,
                  uploaded_with_key=uploader.site_key, **columns)
    try:
        with transaction.atomic():
            frame.save()
    except IntegrityError:  # the same bytes arrived concurrently; that upload stored them
        twin = existing_frame(destination, sha256)
        if twin is None:
            raise
        return twin
    if settings.DATAS_PIPELINE_ON_UPLOAD:
        from observations.processing import start_frame_pipeline

        transaction.on_commit(lambda: start_frame_pipeline(frame.pk))
    return StoredFrame(frame, created=True, warnings=warnings)


# --- Pre-signed uploads (S3) ---------------------------------------------------------------


def grant_upload(destination: Destination, uploader: Uploader, *, sha256: str, size_bytes: int,
                 original_name: str = "") -> tuple[FrameUpload | None, dict | None, StoredFrame | None]:
    """A pre-signed PUT for a file the client will send straight to S3.

    Returns ``(upload, instructions, None)``, or ``(None, None, stored)`` when the network
    already holds these bytes (nothing needs to be sent).
    """
    if not is_s3():
        raise UploadRejected("pre-signed uploads need S3 frame storage; this portal stores frames on its own "
                             "disk: POST the file to /api/v1/frames instead", status=409)
    check_size(size_bytes)
    twin = existing_frame(destination, sha256.lower())
    if twin is not None:
        return None, None, twin
    expires_s = settings.DATAS_UPLOAD_URL_EXPIRES_S
    upload = FrameUpload.objects.create(
        network_id=destination.site.network_id, site=destination.site, target=destination.target,
        observation=destination.observation, sha256=sha256.lower(), size_bytes=size_bytes,
        original_name=original_name[:255], staging_key=staging_key(destination.site.network_id),
        created_by=uploader.user, created_with_key=uploader.site_key,
        expires_at=timezone.now() + timedelta(seconds=expires_s))
    return upload, presigned_put(upload.staging_key, size_bytes, expires_s), None


def complete_upload(upload: FrameUpload, uploader: Uploader) -> StoredFrame:
    """Validate the file a client PUT to the staging key and turn it into a frame.

    The staged object is deleted whatever the outcome: a valid file moves to its frame key.
    """
    if upload.state == UploadState.COMPLETED and upload.frame_id:
        return StoredFrame(upload.frame, created=False, warnings=["this upload was already completed"])
    if upload.state == UploadState.REJECTED:
        raise UploadRejected(f"this upload was rejected: {upload.reason}; request a new one", status=409)
    if upload.expires_at < timezone.now():
        _reject(upload, "the upload URL expired before the upload was completed")
        raise UploadRejected("the upload URL expired; request a new upload", status=410)
    storage = frame_storage()
    try:
        size = storage.size(upload.staging_key)
    except Exception:
        raise UploadRejected("no file has arrived for this upload yet: PUT it to the pre-signed URL first",
                             status=409) from None
    destination = Destination(upload.site, upload.target, upload.observation)
    try:
        check_size(size)
        if size != upload.size_bytes:
            raise UploadRejected(f"the uploaded file has {size:,} bytes, {upload.size_bytes:,} were declared",
                                 field="size_bytes")
        path = local_copy(upload.staging_key, f"staging-{upload.upload_id.hex}")
        try:
            with open(path, "rb") as handle:
                sha256 = sha256_of(handle)
            if sha256 != upload.sha256:
                raise UploadRejected(f"the uploaded file's SHA-256 is {sha256}, {upload.sha256} was declared: "
                                     f"it was damaged in transit; request a new upload", field="sha256")
            twin = existing_frame(destination, sha256)
            if twin is None:
                _, warnings, columns = inspect_frame_file(path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
    except UploadRejected as exc:
        _reject(upload, str(exc))
        raise
    if twin is not None:
        delete_quietly(upload.staging_key)
        _finish(upload, twin.frame)
        return twin
    key = frame_key(upload.network_id, sha256)
    move(upload.staging_key, key)
    stored = _record(destination, uploader, sha256=sha256, size_bytes=size, key=key,
                     original_name=upload.original_name, columns=columns, warnings=warnings)
    _finish(upload, stored.frame)
    return stored


def _reject(upload: FrameUpload, reason: str) -> None:
    delete_quietly(upload.staging_key)
    upload.state, upload.reason = UploadState.REJECTED, reason[:2000]
    upload.save(update_fields=["state", "reason"])


def _finish(upload: FrameUpload, frame: Frame) -> None:
    upload.state, upload.frame = UploadState.COMPLETED, frame
    upload.save(update_fields=["state", "frame"])
