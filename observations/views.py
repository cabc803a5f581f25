"""The first portal page: pick a network, see its sites, recent observations and campaigns."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from network.tenancy import current_network, networks_for, role_in
from observations.models import Observation
from sites.models import Site
from targets.models import Campaign
from targets.selectors import campaign_progress


@login_required
def dashboard(request):
    network = current_network(request)
    context = {"network": network, "networks": networks_for(request.user)}
    if network is not None:
        sites = list(Site.objects.filter(network=network).select_related("owner").order_by("-is_active", "name"))
        campaigns = list(Campaign.objects.filter(network=network, is_active=True).order_by("name"))
        for campaign in campaigns:
            campaign.progress = campaign_progress(campaign)
        context.update(
            role=role_in(request.user, network),
            sites=sites,
            online_count=sum(1 for s in sites if s.is_online),
            observations=Observation.objects.filter(network=network).select_related("target", "site")
            .order_by("-observed_at")[:20],
            campaigns=campaigns,
        )
    return render(request, "portal/dashboard.html", context)
