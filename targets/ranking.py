"""Which targets a site should observe next: the network scheduler's cached list for the site.

``GET /api/v1/targets?site_id=`` calls :func:`ranked_targets`. The list comes from the last
scheduler pass (:mod:`network.schedules`): a cache read and one query for the rows, however
many targets the network has.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from network.schedules import site_list
from sites.models import Site
from targets.models import Campaign, CampaignTarget, Target


@dataclass(frozen=True)
class RankedTarget:
    """A target with its score for one site (higher first), a short reason and its plan.

    ``plan`` holds the scheduler's entry: filter plan, window, best time, altitude, airmass,
    Moon distance, whether it is urgent and the score terms.
    """

    target: Target
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


PLAN_FIELDS = ("urgent", "filter_plan", "window_start", "window_end", "best_time", "altitude_deg",
               "best_altitude_deg", "airmass", "moon_separation_deg", "terms")


def explain(terms: dict[str, float]) -> str:
    """The two terms that moved the score most, in words (e.g. 'urgency x4.0, cadence x3.0')."""
    notable = sorted(((abs(v - 1.0), k, v) for k, v in terms.items() if k != "priority" and v != 1.0), reverse=True)
    return ", ".join(f"{k} x{v:.2f}" for _, k, v in notable[:2]) or "priority"


def ranked_targets(site: Site, count: int, priority_min: float | None = None,
                   campaign: Campaign | None = None) -> RankedList:
    """The site's ranked list from the last scheduler pass, best first.

    Parameters
    ----------
    site : Site
        The site asking; lists only ever hold its own network's targets.
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
    rows = (Target.objects.filter(pk__in=ids, network_id=site.network_id).select_related("network")
            .prefetch_related("aliases"))
    if priority_min is not None:
        rows = rows.filter(priority__gte=priority_min)
    if campaign is not None:
        rows = rows.filter(pk__in=CampaignTarget.objects.filter(campaign=campaign).values("target_id"))
    by_id = {t.pk: t for t in rows}
    ranked = [RankedTarget(by_id[e["target_id"]], e["score"], explain(e["terms"]),
                           {k: e[k] for k in PLAN_FIELDS})
              for e in entries if e["target_id"] in by_id][: max(0, count)]
    return RankedList(ranked, payload.get("generated_at"), payload.get("valid_until"), payload.get("last_changed"),
                      payload.get("etag", ""), payload.get("stale", False), payload.get("reason", ""))
