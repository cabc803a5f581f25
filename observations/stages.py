"""The per-frame pipeline stages, and `run_stage`, which the Celery tasks call.

Each stage is a function ``frame -> (updates, note)``: it computes from the stored frame and
returns the columns to write. `run_stage` runs it only when the frame is waiting for it and
writes the results through observations.states, so a repeated task changes nothing. Errors
are sorted into three kinds:

* permanent (the file or its content cannot give a result: not FITS, no stars, no WCS): the
  frame is marked failed with the reason, and the chain stops;
* transient (storage, database or broker unreachable): re-raised for the task to retry
  with backoff;
* anything else is a bug: logged with its traceback and recorded on the frame as failed.
"""
from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from botocore.exceptions import ClientError
from datas_pipeline.display.preview import PREVIEW_SIDE, THUMBNAIL_SIDE, preview_pngs
from datas_pipeline.errors import PipelineError
from datas_pipeline.io.fits import read_frame
from datas_pipeline.io.headers import normalise_header
from django.db import InterfaceError, OperationalError

from observations.frame_astrometry import SolveInProgress, solve_frame
from observations.frame_header import header_from_cards, judge_header
from observations.frame_measure import grade_frame, luminance, match_calibration, photometry_of_frame
from observations.frames import Frame, ImageType
from observations.models import Observation, PositionSource
from observations.states import StageOutOfOrder, complete_stage, fail, mark_started, needs
from observations.storage import StorageUnavailable, local_copy, product_key, save_bytes
from targets.coverage import refresh_coverage
from targets.models import Target
from targets.selectors import find_target_by_name

log = logging.getLogger(__name__)
# Observations the pipeline creates get ids derived from the frame, so a re-run finds its own.
PIPELINE_OBSERVATION_NAMESPACE = uuid.UUID("5f0b6d1e-7d0c-4b8e-9a55-0c3f7a1d2e90")


class FrameFileMissing(PipelineError):
    """The frame's file is not in the storage any more."""


# S3 error codes that mean "slow down or try again"; every other 4xx (AccessDenied,
# InvalidAccessKeyId, NoSuchBucket...) needs a person, and retrying it only delays the report.
TRANSIENT_S3_CODES = frozenset({"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
                                "TooManyRequestsException", "RequestTimeout", "InternalError",
                                "ServiceUnavailable"})


def _s3_error_is_transient(exc: ClientError) -> bool:
    """A throttle, a timeout or a 5xx from S3; not a refusal such as AccessDenied."""
    code = str(exc.response.get("Error", {}).get("Code", ""))
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if status is None and code.isdigit():
        status = int(code)
    return code in TRANSIENT_S3_CODES or (status is not None and (int(status) >= 500 or int(status) == 429))


def is_transient(exc: BaseException) -> bool:
    """Failures that may pass on their own: retry the task later."""
    if isinstance(exc, ClientError):
        return _s3_error_is_transient(exc)
    if isinstance(exc, StorageUnavailable) and isinstance(exc.__cause__, ClientError):
        return _s3_error_is_transient(exc.__cause__)
    if isinstance(exc, StorageUnavailable | OperationalError | InterfaceError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, StageOutOfOrder | SolveInProgress):
        return True  # an earlier stage of a re-run, or another frame's solve, is still going
    return type(exc).__module__.startswith(("botocore", "urllib3", "redis", "kombu"))


def _stored_file(frame: Frame) -> Path:
    """The frame's file on this machine (fetched once from S3 and reused by later stages)."""
    missing = f"the file {frame.storage_key} is missing from the frame storage"
    try:
        path = local_copy(frame.storage_key, frame.sha256)
    except FileNotFoundError as exc:
        raise FrameFileMissing(missing) from exc
    if not path.is_file():  # the filesystem backend hands back its own path unchecked
        raise FrameFileMissing(missing)
    return path


def _pixels(frame: Frame):
    return read_frame(_stored_file(frame)).data


def _light_luminance(frame: Frame):
    """A light's pixels as one plane; None for calibration frames, which the stages skip unread."""
    return luminance(_pixels(frame)) if frame.image_type == ImageType.LIGHT else None


# --- Stages ----------------------------------------------------------------------------------


def read_header(frame: Frame) -> tuple[dict, str]:
    """Header stage: find the frame's target and observation from the header stored at upload.

    The upload checked the file and stored its header cards and columns; checking it again
    would decode every pixel for nothing. The file is still fetched here, so a missing file
    is reported at the first stage and the later stages find it on this machine.
    """
    _stored_file(frame)
    header = header_from_cards(frame.fits_header or [])
    info = normalise_header(header)
    updates: dict = {}
    if frame.observation_id is None:
        observation = _observation_named_in(frame, header)
        if observation is not None:
            updates["observation"] = observation
            updates.setdefault("target", observation.target)
    if frame.target_id is None and "target" not in updates:
        target = _target_named_in(frame, header, info.object_name)
        if target is not None:
            updates["target"] = target
    warnings = judge_header(info).warnings
    return updates, f"{len(warnings)} header warning(s)" if warnings else ""


def _observation_named_in(frame: Frame, header) -> Observation | None:
    """The site's observation named by OBSID (the DATAS agent writes it)."""
    value = str(header.get("OBSID", "")).strip()
    try:
        observation_id = uuid.UUID(value)
    except ValueError:
        return None
    return Observation.objects.filter(observation_id=observation_id, site_id=frame.site_id).select_related(
        "target").first()


def _target_named_in(frame: Frame, header, object_name: str | None) -> Target | None:
    """TARGETID (a DATAS target id) or OBJECT (a name or alias), within the frame's network."""
    target_id = str(header.get("TARGETID", "")).strip()
    if target_id.isdigit():
        target = Target.objects.filter(pk=int(target_id), network_id=frame.network_id).first()
        if target is not None:
            return target
    return find_target_by_name(frame.network, object_name) if object_name else None


def solve(frame: Frame) -> tuple[dict, str]:
    return solve_frame(frame, _light_luminance(frame))


def grade(frame: Frame) -> tuple[dict, str]:
    return grade_frame(frame, _light_luminance(frame))


def photometry(frame: Frame) -> tuple[dict, str]:
    return photometry_of_frame(frame, _light_luminance(frame))


def record_observation(frame: Frame) -> tuple[dict, str]:
    """Observation stage: create (or update) the observation the frame's photometry makes."""
    measured = frame.photometry or {}
    if frame.observation_id is not None:
        _merge_into(frame.observation, frame, measured)
        return {}, f"updated observation {frame.observation.observation_id}"
    if frame.image_type != ImageType.LIGHT or frame.target_id is None or not measured:
        return {}, "nothing to record: no target was measured"
    observation_id = uuid.uuid5(PIPELINE_OBSERVATION_NAMESPACE, f"{frame.network_id}:{frame.sha256}")
    observation, _ = Observation.objects.update_or_create(
        observation_id=observation_id, defaults=_observation_fields(frame, measured))
    return {"observation": observation}, ""


def _observation_fields(frame: Frame, measured: dict) -> dict:
    position = {"ra_deg": frame.target.ra_deg, "dec_deg": frame.target.dec_deg,
                "position_source": PositionSource.TARGET, "astrometry_error_arcsec": None}
    if measured.get("recentred") and measured.get("target_ra_deg") is not None:
        snr = measured.get("target_snr") or 1.0
        fwhm = frame.fwhm_arcsec or 2.0 * (frame.pixel_scale_arcsec or 1.0)
        position = {"ra_deg": measured["target_ra_deg"], "dec_deg": measured["target_dec_deg"],
                    "position_source": PositionSource.ASTROMETRY,
                    "astrometry_error_arcsec": round(max(fwhm / max(snr, 1.0), 0.01), 4)}
    catalog = measured.get("catalog")
    comparisons = [dict(star, role="comparison", catalog=catalog) for star in measured.get("comparison_stars") or []]
    if measured.get("check_star"):
        comparisons.append(dict(measured["check_star"], role="check", catalog=catalog))
    return dict(
        network_id=frame.network_id, target_id=frame.target_id, site_id=frame.site_id,
        observed_at=frame.observed_at, exposure_sec=frame.exposure_s or 0.0, filter=frame.filter or "none",
        airmass=measured.get("airmass"), seeing_arcsec=frame.fwhm_arcsec, magnitude=measured.get("magnitude"),
        magnitude_error=measured.get("magnitude_error"), comparison_stars=comparisons,
        photometry_method=measured.get("method", "")[:32], quality_flags=frame.quality_flags,
        fits_header=frame.header, image_ref=frame.storage_key, submitted_by=frame.uploaded_by,
        submitted_with_key=frame.uploaded_with_key, **position)


def _merge_into(observation: Observation, frame: Frame, measured: dict) -> None:
    """Complete an agent's observation with what the pipeline measured; keep what it reported."""
    fields = _observation_fields(frame, measured) if measured and frame.target_id else {}
    changed = {"quality_flags": sorted(set(observation.quality_flags) | set(frame.quality_flags))}
    if observation.magnitude is None and fields.get("magnitude") is not None:
        changed.update({k: fields[k] for k in ("magnitude", "magnitude_error", "comparison_stars",
                                                "photometry_method")})
    if observation.position_source == PositionSource.TARGET and fields.get("position_source") == PositionSource.ASTROMETRY:
        changed.update({k: fields[k] for k in ("ra_deg", "dec_deg", "position_source", "astrometry_error_arcsec")})
    for name in ("airmass", "seeing_arcsec"):
        if getattr(observation, name) is None and fields.get(name) is not None:
            changed[name] = fields[name]
    if not observation.image_ref:
        changed["image_ref"] = frame.storage_key
    Observation.objects.filter(pk=observation.pk).update(**changed)


def make_products(frame: Frame) -> tuple[dict, str]:
    """Products stage: preview and thumbnail PNGs, and the target's coverage counters."""
    pixels = _pixels(frame)
    preview, thumbnail = product_key(frame.network_id, frame.sha256, "preview"), \
        product_key(frame.network_id, frame.sha256, "thumbnail")
    preview_png, thumbnail_png = preview_pngs(pixels, (PREVIEW_SIDE, THUMBNAIL_SIDE))
    try:
        save_bytes(preview, preview_png)
        save_bytes(thumbnail, thumbnail_png)
    except OSError as exc:
        raise StorageUnavailable(f"could not write the previews: {exc}") from exc
    target_id = frame.observation.target_id if frame.observation_id else frame.target_id
    if target_id:
        refresh_coverage([target_id])
    return {"preview_key": preview, "thumbnail_key": thumbnail}, ""


STAGE_FUNCTIONS: dict[str, Callable[[Frame], tuple[dict, str]]] = {
    "header": read_header,
    "solve": solve,
    "grade": grade,
    "calibration": match_calibration,
    "photometry": photometry,
    "observation": record_observation,
    "products": make_products,
}


def run_stage(frame_id: int, name: str) -> str:
    """Run stage ``name`` on a frame if it is waiting for it.

    Returns ``"done"``, ``"repeat"`` (already done, or the frame failed earlier: nothing
    changed), ``"failed"`` (a permanent failure, now recorded) or ``"missing"`` (no such
    frame). Transient errors propagate for the caller to retry.
    """
    frame = Frame.objects.select_related("site", "network", "target", "observation").filter(pk=frame_id).first()
    if frame is None:
        log.warning("pipeline: frame %s no longer exists; stage %s skipped", frame_id, name)
        return "missing"
    if not needs(frame, name):
        return "repeat"
    mark_started(Frame, frame_id, name)
    started = time.perf_counter()
    try:
        updates, note = STAGE_FUNCTIONS[name](frame)
    except PipelineError as exc:
        fail(Frame, frame_id, name, str(exc))
        return "failed"
    except Exception as exc:
        if is_transient(exc):
            raise
        log.exception("pipeline: stage %s of frame %s failed unexpectedly", name, frame_id)
        fail(Frame, frame_id, name, f"unexpected {type(exc).__name__}: {exc} (see the worker's log)")
        return "failed"
    advanced = complete_stage(Frame, frame_id, name, updates, seconds=time.perf_counter() - started, note=note)
    return "done" if advanced else "repeat"


def record_gave_up(frame_id: int, name: str, attempts: int, exc: BaseException) -> None:
    """After the last retry of a transient failure: record it as permanent, with the cause."""
    fail(Frame, frame_id, name, f"gave up after {attempts} attempts: {type(exc).__name__}: {exc}")
