"""Network switching, error pages and the favicon; the portal pages live in the portal app."""
from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.contrib.staticfiles import finders
from django.http import FileResponse, Http404, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_POST

from network.tenancy import networks_for, switch_network


@login_required
@require_POST
def switch_network_view(request, slug: str):
    network = networks_for(request.user).filter(slug=slug).first()
    if network is None:
        raise Http404("no such network among yours")
    switch_network(request, network)
    return HttpResponseRedirect(reverse("portal:dashboard"))


def not_found(request, exception=None):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": f"no such endpoint: {request.path}"}, status=404)
    return render(request, "404.html", status=404)


def server_error(request):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "internal error; it has been logged"}, status=500)
    return render(request, "500.html", status=500)


@cache_control(max_age=86400, public=True)
def favicon(request):
    """``/favicon.ico``, which browsers ask for on every page whatever the page links."""
    path = finders.find("favicon.ico")
    if path is None:
        raise Http404("no favicon")
    return FileResponse(open(path, "rb"), content_type="image/x-icon")
