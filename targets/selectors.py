"""Read-side queries for targets and campaigns."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from network.models import Network
from targets.models import Campaign, CampaignTarget, CoveragePolicy, Target, name_key


def find_target_by_name(network: Network, name: str) -> Target | None:
    """The network's target called ``name`` or known by it as an alias (indexed lookup)."""
    key = name_key(name)
    return (Target.objects.filter(network=network).filter(Q(name_key=key) | Q(aliases__name_key=key))
            .distinct().first())


@dataclass
class TargetProgress:
    target_id: int
    name: str
    observations: int
    sites: int
    observations_needed: int
    sites_needed: int
    fraction: float


@dataclass
class CampaignProgress:
    """How far a campaign is: per target, the lesser of its observation and site fractions."""

    targets_total: int = 0
    targets_complete: int = 0
    observations: int = 0
    fraction: float = 0.0
    targets: list[TargetProgress] = field(default_factory=list)


def campaign_progress(campaign: Campaign) -> CampaignProgress:
    """Observations inside the campaign's dates, counted per target and per site.

    A target is complete with ``min_observations`` observations from ``coverage_sites``
    distinct sites (for a redundant campaign, the sites that observed it at all; whether they
    were simultaneous is the scheduler's concern).
    """
    return campaigns_progress([campaign])[campaign.pk]


def campaigns_progress(campaigns: list[Campaign]) -> dict[int, CampaignProgress]:
    """`campaign_progress` of several campaigns in one query (keyed by campaign id)."""
    if not campaigns:
        return {}
    # Observations point at targets (observations imports targets, never the reverse): they are
    # reached through that relation, each counted only inside its campaign's dates.
    inside = Q()
    for campaign in campaigns:
        window = Q(campaign_id=campaign.pk)
        if campaign.starts_at:
            window &= Q(target__observations__observed_at__gte=campaign.starts_at)
        if campaign.ends_at:
            window &= Q(target__observations__observed_at__lte=campaign.ends_at)
        inside |= window
    rows = (CampaignTarget.objects.filter(campaign__in=campaigns)
            .values("campaign_id", "target_id", "target__name", "target__min_observations")
            .annotate(n=Count("target__observations", filter=inside),
                      sites=Count("target__observations__site_id", filter=inside, distinct=True))
            .order_by("campaign_id", "target__name", "target_id"))
    progress = {campaign.pk: CampaignProgress() for campaign in campaigns}
    needed_sites = {campaign.pk: campaign.coverage_sites if campaign.coverage_policy in CoveragePolicy.values else 1
                    for campaign in campaigns}
    for row in rows:
        p, sites_needed = progress[row["campaign_id"]], needed_sites[row["campaign_id"]]
        needed = max(1, row["target__min_observations"])
        fraction = min(1.0, row["n"] / needed, row["sites"] / sites_needed)
        p.targets.append(TargetProgress(row["target_id"], row["target__name"], row["n"], row["sites"], needed,
                                        sites_needed, round(fraction, 4)))
        p.targets_total += 1
        p.observations += row["n"]
        p.targets_complete += fraction >= 1.0
    for p in progress.values():
        if p.targets:
            p.fraction = round(sum(t.fraction for t in p.targets) / len(p.targets), 4)
    return progress


def campaigns_with_counts(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    return campaigns.annotate(target_count=Count("memberships", distinct=True))
