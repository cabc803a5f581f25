"""A site's reported status and weather over the last days, and the network's day/night map."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from datas_pipeline.sky.visibility import sun_altaz
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.utils import timezone
from django.views.decorators.http import require_GET

from demo.darkness import SUN_LIMIT_DEG
from network.tenancy import current_network
from portal.access import get_visible_or_404
from portal.models import SiteStatusSample
from portal.queries import site_states
from portal.views.common import plot_response
from sites.models import Site, SiteStatus, Weather

HISTORY_DAYS = 7
NOT_HEARD = "not heard"
MAP_STEP_DEG = 5.0


def status_series(samples: list[tuple[datetime, str, str]], online_window: timedelta
                  ) -> tuple[list[datetime], list[str], list[str]]:
    """Samples as step series; a gap longer than ``online_window`` becomes a 'not heard' step."""
    times, statuses, weathers = [], [], []
    for index, (at, status, weather) in enumerate(samples):
        if index and at - samples[index - 1][0] > online_window:
            times.append(samples[index - 1][0] + online_window)
            statuses.append(NOT_HEARD)
            weathers.append(NOT_HEARD)
        times.append(at)
        statuses.append(SiteStatus(status).label if status in SiteStatus.values else status)
        weathers.append(Weather(weather).label if weather in Weather.values else weather)
    return times, statuses, weathers


@login_required
@require_GET
def site_history(request, pk: int):
    site = get_visible_or_404(Site.objects.all(), request.user, pk=pk)
    now = timezone.now()
    samples = list(SiteStatusSample.objects.filter(site=site, at__gte=now - timedelta(days=HISTORY_DAYS))
                   .order_by("at").values_list("at", "status", "weather_status")[:5000])
    window = timedelta(seconds=settings.DATAS_SITE_ONLINE_SECONDS)
    if samples and now - samples[-1][0] > window:
        samples.append((samples[-1][0] + window, NOT_HEARD, NOT_HEARD))
    times, statuses, weathers = status_series(samples, window)
    stamps = [t.isoformat() for t in times]
    traces = [{"type": "scatter", "mode": "lines+markers", "name": "agent status", "x": stamps, "y": statuses,
               "line": {"shape": "hv"}},
              {"type": "scatter", "mode": "lines+markers", "name": "weather", "x": stamps, "y": weathers,
               "line": {"shape": "hv"}, "yaxis": "y2"}]
    layout = {"yaxis": {"type": "category", "domain": [0.55, 1]},
              "yaxis2": {"type": "category", "domain": [0, 0.45]},
              "xaxis": {"title": {"text": "UTC, last 7 days"}}}
    return plot_response(traces, layout)


def night_grid(now: datetime, step_deg: float = MAP_STEP_DEG) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Longitudes, latitudes and the Sun's altitude (degrees) on a global grid at ``now``."""
    lon = np.arange(-180.0, 180.0 + step_deg / 2, step_deg)
    lat = np.arange(-90.0, 90.0 + step_deg / 2, step_deg)
    lat_grid, lon_grid = np.meshgrid(lat, lon, indexing="ij")
    altitude, _ = sun_altaz(lat_grid.ravel(), lon_grid.ravel(), np.array([now.timestamp()]))
    return lon, lat, altitude.reshape(lat_grid.shape)


@login_required
@require_GET
def network_map(request):
    """Sites on a longitude/latitude plane over the Sun's altitude now (night shaded); no map tiles."""
    network = current_network(request)
    sites = list(Site.objects.filter(network=network, is_active=True).only(
        "id", "name", "latitude", "longitude", "elevation_m", "last_seen", "status", "weather_status",
        "weather_reported_at", "is_active").order_by("name")[:500]) if network else []
    now = timezone.now()
    lon, lat, sun = night_grid(now)
    states = site_states(sites, now)
    traces = [{"type": "heatmap", "x": lon.tolist(), "y": lat.tolist(), "z": np.round(sun, 1).tolist(),
               "zmin": -30, "zmax": 30, "showscale": False, "hoverinfo": "skip", "name": "Sun altitude",
               "colorscale": [[0, "#0a0e17"], [0.5 + SUN_LIMIT_DEG / 60, "#141c2e"], [0.5, "#2c3b5c"],
                              [1, "#51627f"]]}]
    for online in (True, False):
        chosen = [(s, st) for s, st in zip(sites, states, strict=True) if st.online is online]
        traces.append({"type": "scatter", "mode": "markers+text", "name": "online" if online else "not online",
                       "x": [s.longitude for s, _ in chosen], "y": [s.latitude for s, _ in chosen],
                       "text": [s.name for s, _ in chosen], "textposition": "top center",
                       "customdata": [f"/sites/{s.pk}/" for s, _ in chosen],
                       "hovertext": [f"{s.name}: {st.label}" for s, st in chosen], "hoverinfo": "text",
                       "marker": {"size": 11, "color": "#4cc38a" if online else "#8d97ab",
                                  "line": {"width": 1, "color": "#0a0e17"}}})
    layout = {"xaxis": {"range": [-180, 180], "title": {"text": "longitude (deg)"}, "dtick": 60},
              "yaxis": {"range": [-70, 75], "title": {"text": "latitude (deg)"}, "dtick": 30},
              "legend": {"orientation": "h", "y": -0.3}}
    return plot_response(traces, layout, at=now.astimezone(UTC).isoformat())
