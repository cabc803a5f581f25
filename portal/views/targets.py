"""Target list and target page, with its light curve and tonight's altitude curves as JSON."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from datas_pipeline.sky.visibility import altaz, sun_altaz
from django.contrib.auth.decorators import login_required
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.http import require_GET

from demo.darkness import SUN_LIMIT_DEG
from network.tenancy import current_network
from observations.frames import Frame
from observations.models import Observation
from observations.selectors import light_curve
from portal.access import get_visible_or_404, is_manager
from portal.paging import page_of
from portal.views.common import float_param, plot_response, render_page
from portal.views.movers import target_movers
from sites.models import Site
from targets.alerts.selectors import survey_light_curve
from targets.models import Target, TargetType, name_key
from targets.sky import InvalidSkyPosition, cone_search

LIGHT_CURVE_POINTS = 1500  # per filter and kind: longer series are averaged in time bins (surveys: the latest)
ALTITUDE_STEP_MIN = 10


@login_required
def target_list(request):
    network = current_network(request)
    targets = Target.objects.filter(network=network).only(
        "id", "name", "ra_deg", "dec_deg", "target_type", "magnitude", "priority", "total_observations",
        "unique_sites", "last_observed_at", "is_active")
    error = ""
    q = request.GET.get("q", "").strip()
    if q:
        key = name_key(q)
        targets = targets.filter(Q(name_key__startswith=key) | Q(aliases__name_key=key)).distinct()
    if request.GET.get("type") in TargetType.values:
        targets = targets.filter(target_type=request.GET["type"])
    try:
        ra, dec = float_param(request, "ra", 0, 360), float_param(request, "dec", -90, 90)
        radius = float_param(request, "radius", 1e-6, 180) or 1.0
        if (ra is None) != (dec is None):
            raise ValueError("a cone search needs both ra and dec (degrees)")
        targets = cone_search(targets, ra, dec, radius) if ra is not None else targets.order_by("name")
    except (ValueError, InvalidSkyPosition) as exc:
        error, targets = str(exc), targets.none()
    return render_page(request, "portal/target_list.html", {
        "page": page_of(targets, request), "types": TargetType.choices, "error": error},
        status=400 if error else 200)


@login_required
def target_detail(request, pk: int):
    target = get_visible_or_404(Target.objects.select_related("network"), request.user, pk=pk)
    observations = (Observation.objects.filter(target=target).select_related("site")
                    .only("id", "observed_at", "filter", "magnitude", "magnitude_error", "photometry_method",
                          "airmass", "site__name", "site__id").order_by("-observed_at")[:20])
    frames = (Frame.objects.filter(target=target).select_related("site")
              .only("id", "original_name", "sha256", "observed_at", "filter", "state", "accepted", "thumbnail_key",
                    "site__name").order_by("-observed_at", "-id")[:12])
    return render_page(request, "portal/target_detail.html", {
        "target": target, "aliases": list(target.aliases.values_list("name", flat=True)),
        "campaigns": list(target.campaigns.only("id", "name")),
        "alerts": list(target.alerts.only("id", "source", "external_id", "alert_type", "received_at")[:10]),
        "observations": observations, "frames": frames, **target_movers(target),
        "movers_form": is_manager(request.user, target.network_id)}, network=target.network)


# One colour per band wherever it appears (the network's and a survey's), so a filter reads the
# same across traces; the kind is told by the marker shape, never by colour alone.
BAND_COLOURS = {"U": "#c792ea", "B": "#6fa8ff", "V": "#5fd39b", "R": "#ff8a80", "I": "#d46a6a",
                "g": "#5fd39b", "r": "#ff8a80", "i": "#d46a6a", "z": "#b08968", "clear": "#c9d1df"}
OTHER_COLOUR = "#c9d1df"
SURVEY_MARKER = {"symbol": "diamond", "size": 9, "line": {"width": 1, "color": "#e6e9ef"}}  # light rim: apart from V
LIMIT_MARKER = {"symbol": "triangle-down-open", "size": 9, "line": {"width": 1.5}}


def band_colour(band: str) -> str:
    """``V``, ``ztf-g``, ``sloan-r`` -> the colour of the band letter they end in."""
    key = band.strip()
    return BAND_COLOURS.get(key) or BAND_COLOURS.get(key.rsplit("-", 1)[-1][:1], OTHER_COLOUR)


def network_traces(target: Target) -> list[dict]:
    """The network's photometry per filter: calibrated (filled) and instrumental (open) traces."""
    traces = []
    for instrumental in (False, True):
        kind = "instrumental" if instrumental else "calibrated"
        curves = light_curve(target, max_points=LIGHT_CURVE_POINTS, instrumental=instrumental)
        for filter_name, points in sorted(curves.items()):
            colour = band_colour(filter_name)
            traces.append({
                "type": "scattergl" if len(points) > 1000 else "scatter", "mode": "markers",
                "name": f"{filter_name} ({kind})", "legendgroup": "network",
                "legendgrouptitle": {"text": "this network"},
                "x": [p["t"].isoformat() for p in points], "y": [p["magnitude"] for p in points],
                "error_y": {"type": "data", "array": [p["error"] or 0 for p in points], "visible": True,
                            "thickness": 1, "color": colour},
                "customdata": [p["n"] for p in points],
                "hovertemplate": f"{filter_name} {kind}<br>%{{x}}<br>%{{y:.3f}} ± %{{error_y.array:.3f}} mag"
                                 "<br>%{customdata} obs<extra></extra>",
                "marker": {"symbol": "circle-open" if instrumental else "circle", "size": 6, "color": colour,
                           "line": {"width": 1.5, "color": colour}}})
    return traces


def survey_traces(target: Target) -> list[dict]:
    """The alerts' survey points (e.g. ZTF): detections as diamonds, upper limits as down-triangles.

    Surveys publish calibrated magnitudes; an upper limit is the faintest the survey could have
    seen, drawn at that magnitude and pointing fainter (down on the reversed axis).
    """
    traces = []
    for key, points in sorted(survey_light_curve(target, LIGHT_CURVE_POINTS).items()):
        source, band = key.split(":", 1)
        colour = band_colour(band)
        detections = [p for p in points if p["magnitude"] is not None]
        limits = [p for p in points if p["magnitude"] is None and p["limiting_mag"] is not None]
        common = {"type": "scatter", "mode": "markers", "legendgroup": "survey",
                  "legendgrouptitle": {"text": "surveys (from alerts)"}}
        if detections:
            traces.append({
                **common, "name": f"{band} ({source}, calibrated)",
                "x": [p["observed_at"].isoformat() for p in detections], "y": [p["magnitude"] for p in detections],
                "error_y": {"type": "data", "array": [p["magnitude_error"] or 0 for p in detections],
                            "visible": True, "thickness": 1, "color": colour},
                "hovertemplate": f"{source} {band}<br>%{{x}}<br>%{{y:.3f}} ± %{{error_y.array:.3f}} mag"
                                 "<extra></extra>",
                "marker": {**SURVEY_MARKER, "color": colour}})
        if limits:
            traces.append({
                **common, "name": f"{band} ({source}, upper limit)",
                "x": [p["observed_at"].isoformat() for p in limits], "y": [p["limiting_mag"] for p in limits],
                "hovertemplate": f"{source} {band}<br>%{{x}}<br>not detected: fainter than %{{y:.2f}} mag"
                                 "<extra></extra>",
                "marker": {**LIMIT_MARKER, "color": colour, "line": {**LIMIT_MARKER["line"], "color": colour}}})
    return traces


@login_required
@require_GET
def target_lightcurve(request, pk: int):
    """The light curve: the network's per filter (calibrated and instrumental apart) and the surveys'."""
    target = get_visible_or_404(Target.objects.all(), request.user, pk=pk)
    traces = network_traces(target) + survey_traces(target)
    layout = {"showlegend": True, "yaxis": {"autorange": "reversed", "title": {"text": "magnitude"}},
              "xaxis": {"title": {"text": "time (UTC)"}}, "legend": {"groupclick": "toggleitem"}}
    return plot_response(traces, layout, points=sum(len(t["x"]) for t in traces))


def altitude_curves(target: Target, sites: list[Site], start: datetime, hours: float = 24.0) -> list[dict]:
    """Altitude of ``target`` from each site over ``hours`` from ``start``, dark time only.

    Returns one trace per site that sees the target above its altitude floor while the Sun
    is below ``SUN_LIMIT_DEG``; daylight points are None (a gap in the line).
    """
    if not sites:
        return []
    times = start.timestamp() + np.arange(0, hours * 3600 + 1, ALTITUDE_STEP_MIN * 60)
    lat = np.array([s.latitude for s in sites])
    lon = np.array([s.longitude for s in sites])
    altitude = altaz([target.ra_deg], [target.dec_deg], lat, lon, times).altitude_deg[0]
    sun, _ = sun_altaz(lat, lon, times)
    stamps = [datetime.fromtimestamp(t, UTC).isoformat() for t in times]
    traces = []
    for row, site in enumerate(sites):
        dark = sun[row] < SUN_LIMIT_DEG
        if not np.any(dark & (altitude[row] >= site.min_altitude_deg)):
            continue
        y = [round(float(a), 2) if d else None for a, d in zip(altitude[row], dark, strict=True)]
        traces.append({"type": "scatter", "mode": "lines", "name": site.name, "x": stamps, "y": y,
                       "connectgaps": False})
    return traces


@login_required
@require_GET
def target_altitude(request, pk: int):
    target = get_visible_or_404(Target.objects.all(), request.user, pk=pk)
    sites = list(Site.objects.filter(network_id=target.network_id, is_active=True)
                 .only("id", "name", "latitude", "longitude", "min_altitude_deg").order_by("name")[:60])
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)
    traces = altitude_curves(target, sites, start)
    layout = {"showlegend": True, "yaxis": {"range": [0, 90], "title": {"text": "altitude (deg)"}},
              "xaxis": {"title": {"text": "UTC (dark time only)"}}}
    return plot_response(traces, layout, sites_seeing=len(traces))
