"""Read-side queries for targets and campaigns."""
from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from network.models import Network
from targets.models import Campaign, CampaignTarget, CoveragePolicy, Target, name_key, observation_model


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
    # Observations point at targets (observations imports targets, never the reverse): the model
    # is reached through that relation.
    Observation = observation_model()

    window = Q()
    if campaign.starts_at:
        window &= Q(observed_at__gte=campaign.starts_at)
    if campaign.ends_at:
        window &= Q(observed_at__lte=campaign.ends_at)
    members = list(CampaignTarget.objects.filter(campaign=campaign).select_related("target")
                   .order_by("target__name"))
    counts = {
        row["target_id"]: row
        for row in Observation.objects.filter(window, target__in=[m.target_id for m in members])
        .values("target_id").annotate(n=Count("id"), sites=Count("site_id", distinct=True))
    }
    progress = CampaignProgress(targets_total=len(members))
    sites_needed = campaign.coverage_sites if campaign.coverage_policy in CoveragePolicy.values else 1
    for member in members:
        row = counts.get(member.target_id, {"n": 0, "sites": 0})
        needed = max(1, member.target.min_observations)
        fraction = min(1.0, row["n"] / needed, row["sites"] / sites_needed)
        progress.targets.append(TargetProgress(member.target_id, member.target.name, row["n"], row["sites"],
                                               needed, sites_needed, round(fraction, 4)))
        progress.observations += row["n"]
        progress.targets_complete += fraction >= 1.0
    if members:
        progress.fraction = round(sum(t.fraction for t in progress.targets) / len(members), 4)
    return progress


def campaigns_with_counts(campaigns: QuerySet[Campaign]) -> QuerySet[Campaign]:
    return campaigns.annotate(target_count=Count("memberships", distinct=True))
