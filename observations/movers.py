"""The mover search on a night's frames of a target: service, Celery task and stored products.

The science is :func:`datas_pipeline.movers.find_movers`; this module picks the frames (a
night's lights of a target, or given ids), reads their pixels through the frame storage
(scratch copies on a remote store), runs the search with the frames' times and WCS, stores the
report folder and JSON record beside the frames' other products, and replaces that night's
candidates. Re-running a night is safe: the search row is reused and its candidates replaced.
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np
from astropy.wcs import WCS
from celery import shared_task
from datas_pipeline.io.fits import read_frame
from datas_pipeline.movers import find_movers, result_json
from datas_pipeline.movers.report import write_report
from datas_pipeline.movers.sequence import MoverError
from django.db import transaction
from django.utils.dateparse import parse_datetime

from observations.frame_header import header_from_cards
from observations.frame_measure import luminance
from observations.frames import Frame, ImageType
from observations.mover_models import MoverCandidate, MoverKind, MoverSearch
from observations.storage import StorageUnavailable, local_copy, save_bytes
from targets.models import Target

log = logging.getLogger(__name__)
NIGHT_START = time(12, 0)  # a night runs from noon UTC to the next noon


class MoverSearchError(Exception):
    """Input the search cannot run on (no such target, too few frames, frames of another target)."""


@dataclass
class SearchOutcome:
    search: MoverSearch
    movers: int
    streaks: int


def night_of(moment: datetime) -> date:
    """The night (date of its evening, noon-to-noon UTC) a moment belongs to."""
    moment = moment.astimezone(UTC)
    return (moment - timedelta(hours=12)).date()


def night_frames(network_id: int, target_id: int, night: date):
    """The night's light frames of the target (observed noon UTC of ``night`` to the next noon)."""
    start = datetime.combine(night, NIGHT_START, tzinfo=UTC)
    return (Frame.objects.filter(network_id=network_id, target_id=target_id, image_type=ImageType.LIGHT,
                                 observed_at__gte=start, observed_at__lt=start + timedelta(days=1))
            .order_by("observed_at", "id"))


def report_prefix(network_id: int, target_id: int, night: date) -> str:
    """Storage folder of a night's mover report (beside the frames' other products)."""
    return f"products/{network_id}/movers/{target_id}/{night.isoformat()}"


def _select(network_id: int, target_id: int, night: date | None, frame_ids: list[int] | None):
    target = Target.objects.filter(network_id=network_id, pk=target_id).first()
    if target is None:
        raise MoverSearchError(f"no target {target_id} in network {network_id}")
    if frame_ids:
        frames = list(Frame.objects.filter(network_id=network_id, pk__in=frame_ids).order_by("observed_at", "id"))
        missing = set(frame_ids) - {f.pk for f in frames}
        if missing:
            raise MoverSearchError(f"no frames {sorted(missing)} in network {network_id}")
        others = [f.pk for f in frames if f.target_id != target.pk]
        if others:
            raise MoverSearchError(f"frames {others} are not of target {target.name}")
        timed = [f.observed_at for f in frames if f.observed_at]
        night = night or (night_of(timed[0]) if timed else None)
        if night is None:
            raise MoverSearchError("the frames have no observation time: give the night")
    elif night is not None:
        frames = list(night_frames(network_id, target.pk, night))
    else:
        raise MoverSearchError("give a night or a list of frame ids")
    if len(frames) < 5:
        raise MoverSearchError(f"{len(frames)} frames of {target.name} for the night of {night}: "
                               "the mover search needs at least 5")
    return target, night, frames


def _pixels(frame: Frame) -> Path | np.ndarray:
    """A frame for the search: its stored file (read by row bands) or, for colour, its luminance."""
    try:
        path = local_copy(frame.storage_key, frame.sha256)
    except FileNotFoundError as exc:
        raise MoverSearchError(f"frame {frame.pk}: {exc}") from None
    if not path.is_file():  # the filesystem backend hands back its own path unchecked
        raise MoverSearchError(f"frame {frame.pk}: {frame.storage_key} is missing from the frame storage")
    if header_from_cards(frame.fits_header or []).get("NAXIS", 2) == 2:
        return path
    return luminance(read_frame(path).data)


def _wcs(frame: Frame) -> WCS | None:
    if not frame.wcs_header:
        return None
    try:
        wcs = WCS(frame.wcs_header).celestial
    except Exception:  # a header the solver wrote but astropy refuses: search without sky positions
        log.warning("movers: frame %s has a WCS astropy cannot read; positions in pixels only", frame.pk)
        return None
    return wcs if wcs.has_celestial else None


def _timestamp(value: str | None) -> datetime | None:
    parsed = parse_datetime(value) if value else None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def search_movers(network_id: int, target_id: int, night: date | str | None = None,
                  frame_ids: list[int] | None = None) -> SearchOutcome:
    """Run the mover search on a night's frames of a target and store its products.

    Parameters
    ----------
    network_id, target_id : int
        The target, within its network (frames of other networks are never read).
    night : date or ISO date str, optional
        The night (noon to noon UTC); with ``frame_ids`` defaults to the first frame's night.
    frame_ids : list of int, optional
        Search exactly these frames (all of the target) instead of the night's lights.

    Returns
    -------
    SearchOutcome
        The search row and the number of movers and streaks stored.

    Raises
    ------
    MoverSearchError
        Unknown target or frames, frames of another target, fewer than 5 frames, or frames the
        search cannot use (e.g. of different sizes); nothing is stored then.
    """
    if isinstance(night, str):
        night = date.fromisoformat(night)
    target, night, frames = _select(network_id, target_id, night, frame_ids)
    pixels = [_pixels(f) for f in frames]
    times = [f.observed_at.timestamp() for f in frames] if all(f.observed_at for f in frames) else None
    wcs = _wcs(frames[0])
    names = [f.original_name or f"frame {f.pk}" for f in frames]
    try:
        result = find_movers(pixels, times=times, wcs=wcs, names=names)
    except MoverError as exc:
        message = f"the mover search refused the frames of {target.name} on {night}: {exc}"
        MoverSearch.objects.update_or_create(network_id=network_id, target=target, night=night,
                                             defaults={"error": message})
        raise MoverSearchError(message) from exc
    record = result_json(result, wcs)
    for track in record["tracks"]:  # times given as seconds leave the record's UTC empty: the frame has it
        for p in track["positions"]:
            if not p.get("time") and frames[p["frame"]].observed_at:
                p["time"] = frames[p["frame"]].observed_at.isoformat()
    prefix = report_prefix(network_id, target.pk, night)
    with tempfile.TemporaryDirectory(prefix="datas-movers-") as folder:
        page = write_report(folder, result, pixels)
        for path in sorted(Path(folder).iterdir()):
            if path.is_file():
                save_bytes(f"{prefix}/{path.name}", path.read_bytes())
    json_key = save_bytes(f"{prefix}/movers.json", (json.dumps(record, indent=2) + "\n").encode())
    report_key = f"{prefix}/{page.name}"
    with transaction.atomic():
        search, _ = MoverSearch.objects.select_for_update().get_or_create(
            network_id=network_id, target=target, night=night)
        search.report_key, search.json_key, search.error = report_key, json_key, ""
        search.parameters = record["parameters"]
        search.save()
        search.frames.set(frames)
        search.candidates.all().delete()
        for track in record["tracks"]:
            positions = track["positions"]
            moments = [t for t in (_timestamp(p.get("time")) for p in positions) if t]
            candidate = MoverCandidate.objects.create(
                network_id=network_id, search=search, number=track["id"],
                kind=MoverKind.STREAK if track["kind"] == "streak" else MoverKind.MOVER,
                rate_px_per_frame=track["rate_px_per_frame"], angle_deg=track["angle_deg"] or 0.0,
                snr=track["snr"] or 0.0, positions=positions, found_by=track.get("found_by", "streak"),
                first_at=min(moments, default=None), last_at=max(moments, default=None))
            candidate.frames.set([frames[p["frame"]] for p in positions])
    movers = sum(1 for t in record["tracks"] if t["kind"] != "streak")
    log.info("movers: %s on %s: %d movers, %d streaks in %d frames", target.name, night, movers,
             len(record["tracks"]) - movers, len(frames))
    return SearchOutcome(search, movers, len(record["tracks"]) - movers)


@shared_task(name="movers.search", bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=6,
             ignore_result=True)
def find_movers_task(self, network_id: int, target_id: int, night: str | None = None,
                     frame_ids: list[int] | None = None) -> dict:
    """Celery task around :func:`search_movers`.

    A refused input is logged and returned (``{"error": ...}``), not retried; a frame storage
    that does not answer is retried with the pipeline's backoff.
    """
    from observations.tasks import backoff_seconds

    try:
        outcome = search_movers(network_id, target_id, night, frame_ids)
    except MoverSearchError as exc:
        log.warning("movers: %s", exc)
        return {"error": str(exc)}
    except StorageUnavailable as exc:
        raise self.retry(exc=exc, countdown=backoff_seconds(self.request.retries)) from exc
    return {"search": outcome.search.pk, "movers": outcome.movers, "streaks": outcome.streaks}
