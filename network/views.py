"""The first portal page: pick a network, see its sites, recent observations and campaigns."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_POST

from network.tenancy import current_network, networks_for, role_in, switch_network
from observations.models import Observation
from sites.models import Site
from targets.alerts.selectors import alert_health
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
            **alert_health(network),
        )
    return render(request, "portal/dashboard.html", context)


@login_required
@require_POST
def switch_network_view(request, slug: str):
    network = networks_for(request.user).filter(slug=slug).first()
    if network is None:
        raise Http404("no such network among yours")
    switch_network(request, network)
    return HttpResponseRedirect(reverse("dashboard"))


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"no such endpoint: {request.path}"}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "internal error; it has been logged"}, status=500)
    return render(request, "500.html", status=500)
