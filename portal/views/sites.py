"""Site page, registering and editing a site, its API keys, nightly quality, tasking downloads."""
from __future__ import annotations

import json
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Avg, Count, Q
from django.db.models.functions import TruncDate
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from network.tenancy import current_network
from observations.frames import Frame
from observations.models import Observation
from portal.access import can_edit_site, can_observe, get_visible_or_404, require
from portal.forms import KeyForm, SiteForm
from portal.queries import cached_quality_summary, site_state
from portal.views.common import plot_response, render_page
from scheduling.exports import TASKING_FORMATS, TaskingError
from scheduling.tasking import tasking_for_site, zip_files
from sites.models import Site, SiteKey
from sites.services import issue_site_key, revoke_site_key

QUALITY_NIGHTS = 90
NINA_TEMPLATE_MAX_BYTES = 2_000_000


def _site(request, pk: int) -> Site:
    return get_visible_or_404(Site.objects.select_related("network", "owner"), request.user, pk=pk)


@login_required
def site_detail(request, pk: int):
    site = _site(request, pk)
    editable = can_edit_site(request.user, site)
    keys = list(site.keys.order_by("-created_at")[:20]) if editable else []
    return render_page(request, "portal/site_detail.html", {
        "site": site, "state": site_state(site), "editable": editable, "keys": keys, "key_form": KeyForm(),
        "new_key": request.session.pop("portal_new_key", None),
        "quality": cached_quality_summary(f"site:{site.pk}", Frame.objects.filter(site=site)),
        "horizon": site.horizon or [], "formats": TASKING_FORMATS,
        "observations": Observation.objects.filter(site=site).select_related("target")
        .only("id", "observed_at", "filter", "magnitude", "magnitude_error", "photometry_method", "target__name",
              "target__id")
        .order_by("-observed_at")[:15]}, network=site.network)


@login_required
def site_new(request):
    network = current_network(request)
    require(network is not None and can_observe(request.user, network),
            "only owners, managers and observers of the network may register a site")
    site = Site(network=network, owner=request.user)
    form = SiteForm(request.POST or None, instance=site)
    if request.method == "POST" and form.is_valid():
        site = form.save()
        messages.success(request, f"Site {site.name} registered. Issue an API key for its agent below.")
        return redirect("portal:site", pk=site.pk)
    return render_page(request, "portal/site_form.html", {"form": form, "site": None},
                       status=400 if form.errors else 200)


@login_required
def site_edit(request, pk: int):
    site = _site(request, pk)
    require(can_edit_site(request.user, site), "only the site's owner or a network manager may edit it")
    form = SiteForm(request.POST or None, instance=site)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, f"Site {site.name} saved.")
        return redirect("portal:site", pk=site.pk)
    return render_page(request, "portal/site_form.html", {"form": form, "site": site}, network=site.network,
                       status=400 if form.errors else 200)


@login_required
@require_POST
def key_create(request, pk: int):
    site = _site(request, pk)
    require(can_edit_site(request.user, site), "only the site's owner or a network manager may issue keys")
    form = KeyForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("; ".join(e for errors in form.errors.values() for e in errors))
    issued = issue_site_key(site, label=form.cleaned_data["label"], created_by=request.user)
    # Shown once on the next page and dropped from the session there: only its hash is stored.
    request.session["portal_new_key"] = {"plaintext": issued.plaintext, "lookup": issued.key.lookup}
    return redirect("portal:site", pk=site.pk)


@login_required
@require_POST
def key_revoke(request, pk: int, key_id: int):
    site = _site(request, pk)
    require(can_edit_site(request.user, site), "only the site's owner or a network manager may revoke keys")
    key = get_object_or_404(SiteKey, pk=key_id, site=site)
    revoke_site_key(key)
    messages.success(request, f"Key {key.lookup} revoked: its agent is refused from its next request.")
    return redirect("portal:site", pk=site.pk)


@login_required
@require_GET
def site_quality(request, pk: int):
    """Nightly frame FWHM and acceptance, and observations per night (one point per night)."""
    site = _site(request, pk)
    since = timezone.now() - timedelta(days=QUALITY_NIGHTS)
    nights = list(Frame.objects.filter(site=site, observed_at__gte=since).annotate(night=TruncDate("observed_at"))
                  .values("night").annotate(fwhm=Avg("fwhm_arcsec"), frames=Count("id"),
                                            accepted=Count("id", filter=Q(accepted=True))).order_by("night"))
    observed = list(Observation.objects.filter(site=site, observed_at__gte=since)
                    .annotate(night=TruncDate("observed_at")).values("night").annotate(n=Count("id"))
                    .order_by("night"))
    traces = [
        {"type": "bar", "name": "observations", "x": [r["night"].isoformat() for r in observed],
         "y": [r["n"] for r in observed], "opacity": 0.5},
        {"type": "bar", "name": "frames accepted", "x": [r["night"].isoformat() for r in nights],
         "y": [r["accepted"] for r in nights], "opacity": 0.5},
        {"type": "scatter", "mode": "lines+markers", "name": "mean FWHM (arcsec)", "yaxis": "y2",
         "x": [r["night"].isoformat() for r in nights],
         "y": [None if r["fwhm"] is None else round(r["fwhm"], 3) for r in nights]},
    ]
    layout = {"yaxis": {"title": {"text": "per night"}, "rangemode": "tozero"},
              "yaxis2": {"title": {"text": "FWHM (arcsec)"}, "overlaying": "y", "side": "right",
                         "rangemode": "tozero", "showgrid": False, "automargin": True},
              "barmode": "group"}
    return plot_response(traces, layout)


@login_required
def site_tasking(request, pk: int, fmt: str):
    """Tonight's plan as Ekos (zip), CSV, or N.I.N.A. (POST with the user's template file)."""
    site = _site(request, pk)
    require(can_edit_site(request.user, site), "only the site's owner or a network manager may download tasking")
    if fmt not in TASKING_FORMATS:
        return HttpResponseBadRequest(f"unknown tasking format {fmt!r}; use one of {', '.join(TASKING_FORMATS)}")
    template = None
    if fmt == "nina":
        upload = request.FILES.get("template")
        if request.method != "POST" or upload is None:
            return HttpResponseBadRequest("N.I.N.A. tasking needs your template: upload a target or sequence "
                                          "saved from N.I.N.A.")
        if upload.size > NINA_TEMPLATE_MAX_BYTES:
            return HttpResponseBadRequest("the template is larger than 2 MB")
        try:
            template = json.loads(upload.read().decode("utf-8-sig"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return HttpResponseBadRequest(f"the template is not a N.I.N.A. JSON file: {exc}")
    try:
        _, files = tasking_for_site(site, fmt, nina_template=template)
    except TaskingError as exc:
        return HttpResponseBadRequest(str(exc))
    stem = f"tasking-site{site.pk}"
    if fmt == "csv":
        response = HttpResponse(next(iter(files.values())), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
    else:
        response = HttpResponse(zip_files(files), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{stem}-{fmt}.zip"'
    return response
