"""Which targets a site should observe next: the network scheduler's cached list for the site.

``GET /api/v1/targets?site_id=`` calls :func:`ranked_targets`. The list comes from the last
scheduler pass (:mod:`scheduling.passes`) and the rows of its targets from the cache too
(:func:`cached_target_rows`), so an agent's request costs two cache reads and no query for
the list, however many targets the network has.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from scheduling.passes import site_list
from sites.services import SiteState
from targets.models import Campaign, CampaignTarget, Target, TargetAlias


@dataclass(frozen=True)
class RankedTarget:
    """A target with its score for one site (higher first), a short reason and its plan.

    ``target`` is the target in the API's shape (``TargetSerializer``'s fields, built by
    :func:`target_rows` without model instances); ``plan`` holds the scheduler's entry:
    filter plan, window, best time, altitude, airmass, Moon distance, whether it is urgent
    and the score terms.
    """

    target: dict[str, Any]
    score: float
    reason: str = ""
    plan: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RankedList:
    """A site's list with when it was made, until when it holds and whether it is out of date."""

    targets: list[RankedTarget]
    generated_at: str | None
    valid_until: str | None
    last_changed: str | None
    etag: str
    stale: bool
    reason: str


ROW_FIELDS = ("id", "name", "ra_deg", "dec_deg", "target_type", "magnitude", "priority", "cadence_hours",
              "min_observations", "required_filters", "exposure_sec", "total_hours", "time_windows", "is_active",
              "expires_at", "metadata", "total_observations", "unique_sites", "observations_last_7d",
              "last_observed_at", "created_at")
PLAN_FIELDS = ("urgent", "filter_plan", "window_start", "window_end", "best_time", "altitude_deg",
               "best_altitude_deg", "airmass", "moon_separation_deg", "terms")


def _iso(value: dt.datetime | None) -> str | None:
    """As DRF's DateTimeField writes it (ISO 8601, 'Z' for UTC)."""
    if value is None:
        return None
    text = timezone.localtime(value).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def target_rows(queryset, network_slug: str) -> dict[int, dict[str, Any]]:
    """Targets in ``TargetSerializer``'s shape, straight from ``values()`` (two queries).

    The agent's hot path: no model instances, no serializer fields to walk. The test suite
    checks the shape against the serializer.
    """
    rows = {r["id"]: r for r in queryset.values(*ROW_FIELDS)}
    aliases: dict[int, list[str]] = {pk: [] for pk in rows}
    for target_id, name in (TargetAlias.objects.filter(target_id__in=list(rows)).order_by("name")
                            .values_list("target_id", "name")):
        aliases[target_id].append(name)
    out = {}
    for pk, r in rows.items():
        out[pk] = {
            "id": pk, "network": network_slug, "name": r["name"], "aliases": aliases[pk], "ra_deg": r["ra_deg"],
            "dec_deg": r["dec_deg"], "target_type": r["target_type"], "magnitude": r["magnitude"],
            "priority": r["priority"], "cadence_hours": r["cadence_hours"], "min_observations": r["min_observations"],
            "requirements": {"filters": r["required_filters"], "exposure_sec": r["exposure_sec"],
                             "total_hours": r["total_hours"], "time_windows": r["time_windows"]},
            "is_active": r["is_active"], "expires_at": _iso(r["expires_at"]), "metadata": r["metadata"],
            "coverage": {"total_observations": r["total_observations"], "unique_sites": r["unique_sites"],
                         "observations_last_7d": r["observations_last_7d"],
                         "last_observed_at": _iso(r["last_observed_at"])},
            "created_at": _iso(r["created_at"]),
        }
    return out


def row_key(target_id: int) -> str:
    return f"datas:target-row:{target_id}"


def cached_target_rows(ids: list[int], network_id: int, network_slug: str) -> dict[int, dict[str, Any]]:
    """Rows of the listed targets from the cache, the missing ones from the database (and cached).

    A row lives one scheduler interval (coverage counters are at most that old, like the list
    itself); editing a target or its aliases drops its row (scheduling.signals).
    """
    keys = {row_key(pk): pk for pk in ids}
    rows = {keys[k]: row for k, row in cache.get_many(list(keys)).items()}
    missing = [pk for pk in ids if pk not in rows]
    if missing:
        fresh = target_rows(Target.objects.filter(pk__in=missing, network_id=network_id), network_slug)
        cache.set_many({row_key(pk): row for pk, row in fresh.items()},
                       timeout=settings.DATAS_SCHEDULE_INTERVAL_MINUTES * 60)
        rows.update(fresh)
    return rows


def explain(terms: dict[str, float]) -> str:
    """The two terms that moved the score most, in words (e.g. 'urgency x4.0, cadence x3.0')."""
    notable = sorted(((abs(v - 1.0), k, v) for k, v in terms.items() if k != "priority" and v != 1.0), reverse=True)
    return ", ".join(f"{k} x{v:.2f}" for _, k, v in notable[:2]) or "priority"


def ranked_targets(site: SiteState, count: int, priority_min: float | None = None,
                   campaign: Campaign | None = None) -> RankedList:
    """The site's ranked list from the last scheduler pass, best first.

    Parameters
    ----------
    site : SiteState
        The site asking (``SiteState.of(site)``); lists only ever hold its own network's targets.
    count : int
        How many entries at most.
    priority_min : float, optional
        Leave out targets whose base priority is below this.
    campaign : Campaign, optional
        Only targets of this campaign (already checked to be in the site's network).
    """
    payload = site_list(site)
    entries = payload.get("entries", [])
    if priority_min is None and campaign is None:
        entries = entries[: max(0, count)]
    ids = [e["target_id"] for e in entries]
    by_id = cached_target_rows(ids, site.network_id, site.network_slug)
    if priority_min is not None:
        by_id = {pk: row for pk, row in by_id.items() if row["priority"] >= priority_min}
    if campaign is not None:
        members = set(CampaignTarget.objects.filter(campaign=campaign, target_id__in=list(by_id))
                      .values_list("target_id", flat=True))
        by_id = {pk: row for pk, row in by_id.items() if pk in members}
    ranked = [RankedTarget(by_id[e["target_id"]], e["score"], explain(e["terms"]),
                           {k: e[k] for k in PLAN_FIELDS})
              for e in entries if e["target_id"] in by_id][: max(0, count)]
    stale, reason = payload.get("stale", False), payload.get("reason", "")
    etag = served_etag(payload.get("etag", ""), stale, reason, ranked)
    return RankedList(ranked, payload.get("generated_at"), payload.get("valid_until"), payload.get("last_changed"),
                      etag, stale, reason)


def served_row(rank: int, item: RankedTarget) -> dict[str, Any]:
    """One row of the served list: the target, its score and plan, and at the top level what the
    seed design's minimal client reads: ``target_id`` and the next exposure (``filter``,
    ``exposure_sec``: the plan's first step, else the target's own requirement)."""
    steps = item.plan.get("filter_plan") or []
    first = steps[0] if steps else {}
    required = item.target["requirements"]
    return {"rank": rank, "score": item.score, "reason": item.reason, "plan": item.plan, **item.target,
            "target_id": item.target["id"],
            "filter": first.get("filter") or next(iter(required.get("filters") or []), None),
            "exposure_sec": first.get("exposure_sec") or required.get("exposure_sec")}


def served_etag(list_etag: str, stale: bool, reason: str, ranked: list[RankedTarget]) -> str:
    """The ETag of what is served: the pass's list, the live state and every target row.

    The pass's own ETag covers targets, order and plans but not what happens after it: live
    weather emptying the list (``reason``), a stale flag, an edited target (coordinates,
    name, requirements). Scores and the plan's times move every pass and stay out, so an
    unchanged list still answers 304. ``''`` (no ETag) before the network's first pass.
    """
    if not list_etag:
        return ""
    content = [list_etag, stale, reason, [item.target for item in ranked]]
    return hashlib.sha1(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()[:16]
