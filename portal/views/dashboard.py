"""The network dashboard, its live fragment, and each site's plan for tonight."""
from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.views.decorators.http import require_GET

from network.tenancy import current_network, role_in
from observations.frames import Frame
from portal.access import get_visible_or_404
from portal.queries import cached_quality_summary, feed_lines, recent_frames, recent_observations, site_states
from portal.templatetags.portal import age
from portal.views.common import render_page
from scheduling.exports import TaskingError
from scheduling.tasking import plan_for_site
from sites.models import Site
from targets.alerts.selectors import alert_counts
from targets.models import Campaign
from targets.selectors import campaigns_progress

DASHBOARD_CAMPAIGNS = 8


@login_required
def dashboard(request):
    network = current_network(request)
    if network is None:
        return render_page(request, "portal/dashboard.html", {"network": None})
    sites = list(Site.objects.filter(network=network).select_related("owner").order_by("-is_active", "name")[:200])
    campaigns = list(Campaign.objects.filter(network=network, is_active=True).order_by("name")[:DASHBOARD_CAMPAIGNS])
    progress = campaigns_progress(campaigns)
    for campaign in campaigns:
        campaign.progress = progress[campaign.pk]
    rows = list(zip(sites, site_states(sites), strict=True))
    role = role_in(request.user, network)
    return render_page(request, "portal/dashboard.html", {
        "network": network, "role": role, "site_rows": rows, "online_count": sum(1 for _, s in rows if s.online),
        "campaigns": campaigns, "online_window": age(settings.DATAS_SITE_ONLINE_SECONDS),
        "quality": cached_quality_summary(f"network:{network.pk}", Frame.objects.filter(network=network)),
        "observations": recent_observations(network), "frames": recent_frames(network),
        "alert_counts": alert_counts(network), "feed_lines": feed_lines(request.user, role)})


@login_required
@require_GET
def live_recent(request):
    """The recent observations and frames, re-fetched by the dashboard every few seconds."""
    network = current_network(request)
    context = {"observations": [], "frames": []}
    if network is not None:
        context = {"observations": recent_observations(network), "frames": recent_frames(network)}
    return render(request, "portal/_recent.html", context)


@login_required
@require_GET
def site_plan(request, pk: int):
    """Tonight's tasking plan for one site (a fragment; computing it takes the scheduler a moment)."""
    site = get_visible_or_404(Site.objects.select_related("network"), request.user, pk=pk)
    try:
        plan = plan_for_site(site)
        error = ""
    except TaskingError as exc:
        plan, error = None, str(exc)
    return render(request, "portal/_plan.html", {"site": site, "plan": plan, "error": error,
                                                 "compact": request.GET.get("compact") == "1"})
