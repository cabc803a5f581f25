"""Read-side queries for frames: tenant scope, cone search, pipeline status per target."""
from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Count, F, Max, QuerySet, Window
from django.db.models.functions import RowNumber

from network.models import Network
from observations.frames import Frame
from observations.states import ORDER, FrameState, progress
from targets.sky import cone_search

RECENT_FAILURES = 5  # failed frames listed per target in the pipeline status


def frames_of_networks(networks: QuerySet[Network] | Iterable[Network]) -> QuerySet[Frame]:
    return Frame.objects.filter(network__in=networks).select_related("network", "target", "observation")


def frames_in_cone(frames: QuerySet[Frame], ra_deg: float, dec_deg: float, radius_deg: float) -> QuerySet[Frame]:
    """Frames whose WCS centre lies within ``radius_deg`` of (RA, Dec), nearest first.

    Goes through the one cone search of the project (Q3C on PostgreSQL, exact great-circle
    distance on SQLite); frames not solved yet have no centre and are never returned.
    Each row carries ``separation_deg``.
    """
    return cone_search(frames.filter(ra_deg__isnull=False), ra_deg, dec_deg, radius_deg)


def pipeline_status(frames: QuerySet[Frame]) -> list[dict]:
    """Per target (None for frames without one): frames per state, done share, last failures.

    ``frames`` is already scoped to the caller's networks.
    """
    rows = frames.order_by().values("target_id", "target__name", "state").annotate(
        n=Count("id"), last=Max("state_changed_at"))
    by_target: dict[int | None, dict] = {}
    for row in rows:
        entry = by_target.setdefault(row["target_id"], {
            "target_id": row["target_id"], "target_name": row["target__name"], "frames": 0,
            "states": {state: 0 for state in [*ORDER, FrameState.FAILED]}, "last_change": None})
        entry["frames"] += row["n"]
        entry["states"][row["state"]] = row["n"]
        if entry["last_change"] is None or row["last"] > entry["last_change"]:
            entry["last_change"] = row["last"]
    failures = _recent_failures(frames) if any(e["states"][FrameState.FAILED] for e in by_target.values()) else {}
    for target_id, entry in by_target.items():
        states = entry["states"]
        entry["done"] = states[FrameState.DONE]
        entry["failed"] = states[FrameState.FAILED]
        entry["in_progress"] = entry["frames"] - entry["done"] - entry["failed"]
        entry["progress"] = round(sum(progress(s) * n for s, n in states.items()) / max(entry["frames"], 1), 4)
        entry["recent_failures"] = failures.get(target_id, [])
    return sorted(by_target.values(), key=lambda e: (e["target_name"] is None, e["target_name"] or ""))


def _recent_failures(frames: QuerySet[Frame], per_target: int = RECENT_FAILURES) -> dict[int | None, list[dict]]:
    """The latest ``per_target`` failed frames of every target, in one query (newest first)."""
    newest = Window(RowNumber(), partition_by=[F("target_id")], order_by=[F("state_changed_at").desc(), F("id").desc()])
    rows = (frames.filter(state=FrameState.FAILED).order_by().annotate(rank=newest).filter(rank__lte=per_target)
            .order_by("target_id", "rank").values("target_id", "id", "original_name", "state_reason",
                                                  "state_changed_at"))
    grouped: dict[int | None, list[dict]] = {}
    for row in rows:
        grouped.setdefault(row.pop("target_id"), []).append(row)
    return grouped
