"""Which targets a site should observe next: a placeholder until the network scheduler lands.

`placeholder_ranked_targets` is the one function ``GET /api/v1/targets?site_id=`` calls; the
scheduler (network/scheduling/) replaces it with the real ranking and keeps the signature.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Max, Q
from django.utils import timezone

from sites.models import Site
from targets.models import Campaign, Target


@dataclass(frozen=True)
class RankedTarget:
    """A target with its score for one site (higher first) and a short reason."""

    target: Target
    score: float
    reason: str = ""


def _crude_dec_reachable(site: Site, dec_deg: float) -> bool:
    """True when the target ever rises above the site's altitude floor (meridian altitude)."""
    meridian_altitude = 90.0 - abs(site.latitude - dec_deg)
    return meridian_altitude >= site.min_altitude_deg


def placeholder_ranked_targets(site: Site, count: int, priority_min: float | None = None,
                               campaign: Campaign | None = None) -> list[RankedTarget]:
    """Rank the site's network's active targets by priority, campaign boost and staleness.

    Parameters
    ----------
    site : Site
        The site asking; only its network's targets are considered.
    count : int
        How many targets to return at most.
    priority_min : float, optional
        Leave out targets whose base priority is below this.
    campaign : Campaign, optional
        Only targets of this campaign (already checked to be in the site's network).

    Returns
    -------
    list of RankedTarget
        Best first. Ignores time of night, weather and the Moon: that is the scheduler's job.
    """
    now = timezone.now()
    targets = (Target.objects.filter(network_id=site.network_id, is_active=True)
               .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
               .annotate(campaign_boost=Max("campaign_memberships__campaign__priority_boost",
                                            filter=Q(campaign_memberships__campaign__is_active=True))))
    if priority_min is not None:
        targets = targets.filter(priority__gte=priority_min)
    if campaign is not None:
        targets = targets.filter(campaign_memberships__campaign=campaign)
    ranked = []
    for target in targets:
        if not _crude_dec_reachable(site, target.dec_deg):
            continue
        hours_since = ((now - target.last_observed_at).total_seconds() / 3600
                       if target.last_observed_at else None)
        cadence = target.cadence_hours or 24.0
        # Overdue targets climb: 1 at one cadence since the last observation, capped at 3.
        staleness = 3.0 if hours_since is None else min(3.0, hours_since / cadence)
        score = target.priority + (target.campaign_boost or 0.0) + staleness
        if target.total_observations < target.min_observations:
            score += 1.0
        reason = "never observed" if hours_since is None else f"last observed {hours_since:.1f} h ago"
        ranked.append(RankedTarget(target=target, score=round(score, 4), reason=reason))
    ranked.sort(key=lambda r: (-r.score, r.target.name))
    return ranked[: max(0, count)]



