"""Read-side queries the portal pages need beyond the apps' selectors.

Every function takes an already-chosen network (or a queryset scoped to one) and runs a
fixed number of queries whatever the size of the tables: lists are sliced in SQL, summaries
are aggregates.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from demo.darkness import darkness_outlook
from network.models import MANAGING_ROLES, Network
from observations.frames import Frame, ImageType
from observations.models import Observation
from observations.states import TERMINAL, FrameState
from sites.models import Site, SiteStatus
from targets.alerts.selectors import feed_health_lines
from targets.models import CampaignTarget

QUALITY_DAYS = 7
QUALITY_ROWS = 20_000  # frames read for the per-night medians (newest first)
QUALITY_NIGHT_ROWS = 21
QUALITY_CACHE_SECONDS = 60


@dataclass(frozen=True)
class SiteState:
    """What the portal says about a site: only a recent agent heartbeat makes it online."""

    online: bool
    label: str
    seen_seconds: float | None
    weather: str
    weather_seconds: float | None
    weather_stale: bool
    dark_now: bool | None = None
    hours_until_dark: float | None = None
    sun_altitude_deg: float | None = None


def site_state(site: Site, now: datetime | None = None) -> SiteState:
    """Online/observing/offline from ``last_seen``; weather with its age, stale past the limit."""
    now = now or timezone.now()
    seen = None if site.last_seen is None else (now - site.last_seen).total_seconds()
    online = seen is not None and seen <= settings.DATAS_SITE_ONLINE_SECONDS
    if not site.is_active:
        label = "deactivated"
    elif seen is None:
        label = "never connected"
    elif not online:
        label = "offline"
    elif site.status == SiteStatus.UNKNOWN:
        label = "online"
    else:
        label = f"online · {site.get_status_display()}"
    weather_age = None if site.weather_reported_at is None else (now - site.weather_reported_at).total_seconds()
    stale = weather_age is None or weather_age > settings.DATAS_WEATHER_MAX_AGE_SECONDS
    return SiteState(online, label, seen, site.get_weather_status_display(), weather_age, stale)


def site_states(sites: list[Site], now: datetime | None = None) -> list[SiteState]:
    """`site_state` for each site, plus day or night there now (one vectorised Sun computation)."""
    now = now or timezone.now()
    states = [site_state(site, now) for site in sites]
    if not sites:
        return states
    outlook = darkness_outlook(np.array([s.latitude for s in sites]), np.array([s.longitude for s in sites]),
                               np.array([s.elevation_m for s in sites]), now, window_h=24.0, step_minutes=10.0)
    return [SiteState(**{**state.__dict__, "dark_now": d.dark_now, "hours_until_dark": d.hours_until_dark,
                         "sun_altitude_deg": d.sun_altitude_deg}) for state, d in zip(states, outlook, strict=True)]


def recent_observations(network: Network, limit: int = 15) -> QuerySet[Observation]:
    return (Observation.objects.filter(network=network).select_related("target", "site")
            .order_by("-observed_at")[:limit])


def recent_frames(network: Network, limit: int = 12) -> QuerySet[Frame]:
    return (Frame.objects.filter(network=network).select_related("target", "site")
            .only("id", "original_name", "sha256", "observed_at", "uploaded_at", "filter", "state", "accepted",
                  "thumbnail_key", "fwhm_arcsec", "target__name", "site__name")
            .order_by("-uploaded_at", "-id")[:limit])


def quality_summary(frames: QuerySet[Frame], now: datetime | None = None, days: int = QUALITY_DAYS) -> dict:
    """Frames accepted and rejected (and why), medians per site per night, pipeline backlog.

    ``frames`` is scoped to one network (or one site). Nights are UTC dates of mid-exposure.
    """
    now = now or timezone.now()
    since = now - timedelta(days=days)
    recent = frames.filter(uploaded_at__gte=since)
    counts = recent.aggregate(
        n_accepted=Count("id", filter=Q(accepted=True)), n_rejected=Count("id", filter=Q(accepted=False)),
        n_failed=Count("id", filter=Q(state=FrameState.FAILED)), n_total=Count("id"))
    counts = {name.removeprefix("n_"): value for name, value in counts.items()}
    counts["backlog"] = frames.exclude(state__in=list(TERMINAL)).count()
    reasons: Counter[str] = Counter()
    for flags in recent.filter(accepted=False).values_list("quality_flags", flat=True)[:QUALITY_ROWS]:
        reasons.update(flags or ["no reason recorded"])
    # The night in SQL and no JSON but the zero point: decoding every row's flags and
    # timestamps in Python was most of this summary's time.
    rows = (recent.filter(image_type=ImageType.LIGHT, observed_at__isnull=False)
            .annotate(night=TruncDate("observed_at", tzinfo=UTC)).order_by("-observed_at")
            .values_list("night", "site__name", "fwhm_arcsec", "photometry__zero_point")[:QUALITY_ROWS])
    nights: dict[tuple[date, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for night, site_name, fwhm, zero_point in rows:
        fwhms, zero_points = nights[(night, site_name)]
        if fwhm is not None:
            fwhms.append(fwhm)
        if isinstance(zero_point, (int, float)) and not isinstance(zero_point, bool):
            zero_points.append(float(zero_point))
    per_night = [{"night": night.isoformat(), "site": site, "frames": max(len(fwhms), len(zps)),
                  "median_fwhm": float(np.median(fwhms)) if fwhms else None,
                  "median_zero_point": float(np.median(zps)) if zps else None}
                 for (night, site), (fwhms, zps) in sorted(nights.items(), reverse=True)[:QUALITY_NIGHT_ROWS]]
    failures = list(frames.filter(state=FrameState.FAILED).order_by("-state_changed_at")
                    .values("id", "original_name", "state_reason", "state_changed_at")[:5])
    return {**counts, "reasons": reasons.most_common(8), "per_night": per_night, "failures": failures,
            "days": days}


def cached_quality_summary(scope: str, frames: QuerySet[Frame]) -> dict:
    """`quality_summary` kept for ``QUALITY_CACHE_SECONDS`` under ``scope`` (e.g. ``network:3``).

    A week's summary moves slowly, and on a busy network it reads up to ``QUALITY_ROWS`` frames:
    pages that show it (and reload it) share one computation.
    """
    return cache.get_or_set(f"portal:quality:{scope}", lambda: quality_summary(frames), QUALITY_CACHE_SECONDS)


def feed_lines(user, role: str | None) -> list[str]:
    """The alert feeds' health as this person (with ``role`` in the network shown) may see it.

    Feeds serve every network on the server, so their message and alert counts and their last
    error mix all networks' traffic: those are for the server's staff. A network's owners and
    managers (who act on its alerts) see whether each feed is running and how far behind it is;
    other members see only their own network's alert counts.
    """
    if user.is_staff:
        return feed_health_lines(full=True)
    if role in MANAGING_ROLES:
        return feed_health_lines(full=False)
    return []


def contributions(network: Network, user) -> dict:
    """What the user's sites gave the network: counts, hours, targets, campaigns, share."""
    mine = Observation.objects.filter(network=network, site__owner=user)
    totals = mine.aggregate(observations=Count("id"), seconds=Sum("exposure_sec"),
                            targets=Count("target", distinct=True))
    network_total = Observation.objects.filter(network=network).count()
    campaigns = (CampaignTarget.objects.filter(campaign__network=network, target__in=mine.values("target_id"))
                 .values("campaign_id").distinct().count())
    frames = Frame.objects.filter(network=network, site__owner=user).count()
    return {"observations": totals["observations"], "hours": (totals["seconds"] or 0) / 3600,
            "targets": totals["targets"], "campaigns": campaigns, "frames": frames,
            "share": totals["observations"] / network_total if network_total else 0.0}
