"""Campaign list and campaign page: progress against requirements, contributing sites, windows ahead."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.utils import timezone

from network.tenancy import current_network
from network.validators import parse_windows
from observations.models import Observation
from portal.access import get_visible_or_404
from portal.paging import page_of
from portal.views.common import render_page
from targets.models import Campaign, Target
from targets.selectors import campaign_progress, campaigns_with_counts


@login_required
def campaign_list(request):
    network = current_network(request)
    campaigns = campaigns_with_counts(Campaign.objects.filter(network=network)).order_by("-is_active", "name")
    return render_page(request, "portal/campaign_list.html", {"page": page_of(campaigns, request)})


@login_required
def campaign_detail(request, pk: int):
    campaign = get_visible_or_404(Campaign.objects.select_related("network"), request.user, pk=pk)
    progress = campaign_progress(campaign)
    window = Q()
    if campaign.starts_at:
        window &= Q(observed_at__gte=campaign.starts_at)
    if campaign.ends_at:
        window &= Q(observed_at__lte=campaign.ends_at)
    contributors = (Observation.objects.filter(window, target__campaign_memberships__campaign=campaign)
                    .values("site_id", "site__name").annotate(n=Count("id"), targets=Count("target", distinct=True))
                    .order_by("-n")[:50])
    now = timezone.now()
    windows = []
    for target in Target.objects.filter(campaign_memberships__campaign=campaign).exclude(time_windows=[]).only(
            "id", "name", "time_windows"):
        for start, end, raw in parse_windows(target.time_windows, "time_windows"):
            if end > now.timestamp():
                windows.append({"target": target, "start": start, "end": end,
                                "boost": raw.get("priority_boost", 0)})
    windows.sort(key=lambda w: w["start"])
    met = sum(1 for t in progress.targets if t.sites >= t.sites_needed)
    return render_page(request, "portal/campaign_detail.html", {
        "campaign": campaign, "progress": progress, "contributors": contributors, "windows": windows[:30],
        "coverage_met": met}, network=campaign.network)
