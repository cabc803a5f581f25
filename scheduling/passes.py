"""The network scheduler inside the portal: run passes and keep every site's ranked list cached.

One hop from the pure scheduler (:mod:`scheduling`): this module turns a network's
sites and targets into specs, runs :func:`~scheduling.schedule_network`, and stores
each site's list in the Django cache (Redis in production) under
``datas:schedule:site:<id>``, so the agent endpoint is a cache read. Anything that changes
what a site should do (an observation, an alert, a weather report, a target or campaign
edit) marks lists stale and asks for a new pass (:func:`mark_stale`, wired in
:mod:`scheduling.signals`); the Celery beat entry runs a pass every few minutes anyway.

Database conventions mapped here: campaign and time-window boosts are *added* to a target's
priority (the spine's meaning), so each becomes the factor (priority + boost) / priority.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable
from types import SimpleNamespace
from typing import Any

from datas_pipeline.sky.visibility import HorizonProfile, VisibilityError
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Q, Sum, TextField
from django.db.models.fields.json import KT
from django.db.models.functions import Cast
from django.utils import timezone

from network.models import Network
from network.validators import parse_windows
from observations.models import Observation
from scheduling import (
    POLICY_REDUNDANT,
    CampaignSpec,
    NetworkSchedule,
    SchedulerConfig,
    SchedulingError,
    SiteSchedule,
    SiteSpec,
    TargetSpec,
    TimeCriticalWindow,
    schedule_network,
    site_readiness,
)
from sites.models import Site
from targets.models import CampaignTarget, Target

log = logging.getLogger(__name__)

PREFIX = "datas:schedule"
KEEP_S = 24 * 3600
RECENT_DAYS = 7
TARGET_FIELDS = ("id", "name", "ra_deg", "dec_deg", "priority", "magnitude", "target_type", "cadence_hours",
                 "last_observed_at", "min_observations", "total_observations", "filters_text", "exposure_sec",
                 "total_hours", "windows_text", "size_arcmin")


def _now() -> dt.datetime:
    """The scheduler's clock (tests replace it to put sites in a known night)."""
    return timezone.now()


def list_key(site_id: int) -> str:
    return f"{PREFIX}:site:{site_id}"


def queued_key(network_id: int) -> str:
    return f"{PREFIX}:queued:{network_id}"


def _stale_key(kind: str, ident: int) -> str:
    return f"{PREFIX}:stale:{kind}:{ident}"


def _unix(value: dt.datetime | None) -> float | None:
    return None if value is None else value.timestamp()


BEAT_ENTRY = "Network scheduler: every site's ranked list"


def ensure_beat_entry() -> None:
    """Create the periodic pass in django-celery-beat if it is missing (never overwrites an
    interval edited in the admin). Runs after ``migrate``."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask
    if PeriodicTask.objects.filter(name=BEAT_ENTRY).exists():
        return
    every, _ = IntervalSchedule.objects.get_or_create(every=settings.DATAS_SCHEDULE_INTERVAL_MINUTES,
                                                      period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(name=BEAT_ENTRY, task="network.schedule_all", interval=every,
                                description="Runs the network scheduler and caches each site's ranked list. "
                                            "Lists stay valid for one interval: edit it here.")


def pass_interval_s() -> float:
    """Seconds between passes: the beat entry's interval when it exists, else the setting."""
    from django_celery_beat.models import PeriodicTask
    entry = PeriodicTask.objects.filter(name=BEAT_ENTRY, enabled=True).select_related("interval").first()
    if entry is not None and entry.interval is not None:
        return float(entry.interval.schedule.run_every.total_seconds())
    return settings.DATAS_SCHEDULE_INTERVAL_MINUTES * 60.0


def scheduler_config() -> SchedulerConfig:
    """The pass settings: list length from the settings, validity = the pass interval."""
    return SchedulerConfig(list_length=settings.DATAS_SCHEDULE_LIST_LENGTH, valid_for_s=pass_interval_s())


def horizon_profile(points: Iterable[Any]) -> HorizonProfile | None:
    """The site's ``[[azimuth, altitude], ...]`` as a profile: 360 folds onto 0 (the higher
    altitude wins at a repeated azimuth) and altitudes below -5 deg count as -5."""
    merged: dict[float, float] = {}
    for azimuth, altitude in points or []:
        az = float(azimuth) % 360.0
        merged[az] = max(merged.get(az, -5.0), min(max(float(altitude), -5.0), 90.0))
    return HorizonProfile.from_points(merged) if merged else None


def site_spec(site: Site) -> SiteSpec:
    """A site row as the scheduler sees it (twilight and moon limit from the settings)."""
    east, west = site.ha_limit_east_h, site.ha_limit_west_h
    ha_limits = None if east is None and west is None else (
        -12.0 if east is None else float(east), 12.0 if west is None else float(west))
    availability = tuple((a, b) for a, b, _ in parse_windows(site.availability or [], "availability")) or None
    return SiteSpec(
        id=site.pk, name=site.name, latitude_deg=site.latitude, longitude_deg=site.longitude,
        elevation_m=site.elevation_m, filters=tuple(site.filters or ()), fov_arcmin=site.fov_arcmin,
        limiting_mag=site.limiting_mag, min_altitude_deg=site.min_altitude_deg,
        horizon=horizon_profile(site.horizon), ha_limits_hours=ha_limits,
        twilight=settings.DATAS_SCHEDULE_TWILIGHT,
        min_moon_separation_deg=settings.DATAS_SCHEDULE_MOON_SEPARATION_DEG,
        weather=site.weather_status, weather_reported_at=_unix(site.weather_reported_at),
        weather_max_age_s=settings.DATAS_WEATHER_MAX_AGE_SECONDS, reliability=site.reliability,
        availability=availability, is_active=site.is_active,
    )


def load_sites(network_id: int) -> tuple[list[SiteSpec], dict[Site, str]]:
    """Every site of the network (inactive ones too, so their lists say why they are empty),
    and the sites the scheduler cannot use with the reason for each."""
    specs, refused = [], {}
    for site in Site.objects.filter(network_id=network_id).order_by("pk"):
        try:
            specs.append(site_spec(site))
        except (SchedulingError, VisibilityError, ValidationError) as exc:
            reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
            log.warning("site %s (%s) left out of the schedule: %s", site.pk, site.name, reason)
            refused[site] = f"the scheduler cannot use this site: {reason}"
    return specs, refused


def _campaigns(network_id: int) -> dict[int, list[tuple]]:
    rows = (CampaignTarget.objects.filter(target__network_id=network_id, campaign__is_active=True)
            .values_list("target_id", "campaign_id", "campaign__name", "campaign__priority_boost", "priority_boost",
                         "campaign__coverage_policy", "campaign__coverage_sites", "campaign__starts_at",
                         "campaign__ends_at"))
    out: dict[int, list[tuple]] = defaultdict(list)
    for target_id, *rest in rows:
        out[target_id].append(tuple(rest))
    return out


def _boost_factor(priority: float, added: float) -> float:
    return max(0.0, (priority + added) / priority) if priority > 0 else 1.0


def load_targets(network_id: int, now: dt.datetime) -> list[TargetSpec]:
    """The network's active, unexpired targets with campaigns, coverage and recent sites."""
    # JSON columns come as text and are parsed once per distinct value: 100,000 targets share a
    # handful of filter sets, and json.loads per row would cost seconds.
    rows = (Target.objects.filter(network_id=network_id, is_active=True)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
            .annotate(filters_text=Cast("required_filters", TextField()), windows_text=Cast("time_windows", TextField()),
                      size_arcmin=KT("metadata__size_arcmin"))
            .values_list(*TARGET_FIELDS))
    parsed: dict[str, Any] = {}

    def json_value(text: str | None) -> Any:
        if text is None:
            return None
        if text not in parsed:
            parsed[text] = json.loads(text)
        return parsed[text]

    campaigns = _campaigns(network_id)
    seconds = dict(Observation.objects.filter(network_id=network_id, target__total_hours__isnull=False)
                   .values("target_id").annotate(total=Sum("exposure_sec")).values_list("target_id", "total"))
    recent: dict[int, dict[int, int]] = defaultdict(dict)
    for target_id, site_id, count in (Observation.objects.filter(network_id=network_id,
                                                                 observed_at__gte=now - dt.timedelta(days=RECENT_DAYS))
                                      .values("target_id", "site_id").annotate(n=Count("id"))
                                      .values_list("target_id", "site_id", "n")):
        recent[target_id][site_id] = count
    specs = []
    for (pk, name, ra, dec, priority, magnitude, kind, cadence, last, min_obs, total_obs, filters_text, exposure,
         total_hours, windows_text, size) in rows:
        filters, windows = json_value(filters_text), json_value(windows_text)
        try:
            specs.append(TargetSpec(
                id=pk, name=name, ra_deg=ra, dec_deg=dec, priority=priority, magnitude=magnitude, target_type=kind,
                cadence_hours=cadence or None, last_observed_at=_unix(last), min_observations=min_obs,
                observations_total=total_obs, hours_needed=total_hours or 0.0,
                hours_observed=seconds.get(pk, 0.0) / 3600.0, filters=tuple(filters or ()),
                exposure_sec=exposure or 60.0, size_arcmin=_size(size),
                campaigns=tuple(CampaignSpec(cid, cname, _boost_factor(priority, (boost or 0) + (extra or 0)),
                                             policy, sites if policy == POLICY_REDUNDANT else 1, True,
                                             _unix(starts), _unix(ends))
                                for cid, cname, boost, extra, policy, sites, starts, ends in campaigns.get(pk, [])),
                time_critical=tuple(
                    TimeCriticalWindow(a, b, max(0.1, _boost_factor(priority, float(w.get("priority_boost") or 0))))
                    for a, b, w in parse_windows(windows or [], "time_windows")),
                recent_sites=recent.get(pk, {}),
            ))
        except (SchedulingError, ValidationError, TypeError, ValueError) as exc:
            log.warning("target %s (%s) left out of the schedule: %s", pk, name, exc)
    return specs


def _size(value: Any) -> float | None:
    """``metadata.size_arcmin`` as a positive float (the database may hand it over as text)."""
    try:
        size = float(value) if value is not None and not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
    return size if size is not None and size > 0 else None


def list_etag(entries: list[dict]) -> str:
    """Changes only when what an agent would do changes (targets, order, plans), not scores."""
    content = [(e["target_id"], e["urgent"], [(s["filter"], s["exposure_sec"], s["count"]) for s in e["filter_plan"]])
               for e in entries]
    return hashlib.sha1(json.dumps(content).encode()).hexdigest()[:16]


def store(result: NetworkSchedule, network_id: int, data_as_of: float) -> None:
    """Cache every site's list (one round trip), keeping ``last_changed`` when nothing changed.

    ``data_as_of`` (wall-clock seconds) is when the pass read the database: a stale mark
    newer than that is not covered by this pass.
    """
    keys = {list_key(site_id): site_id for site_id in result.sites}
    previous = cache.get_many(list(keys))
    payloads = {}
    for key, site_id in keys.items():
        payload = result.sites[site_id].as_dict()
        payload.update(network_id=network_id, generated_unix=result.generated_at, valid_unix=result.valid_until,
                       stored_at=data_as_of, etag=list_etag(payload["entries"]))
        old = previous.get(key)
        payload["last_changed"] = (old["last_changed"] if old and old.get("etag") == payload["etag"]
                                   else payload["generated_at"])
        payloads[key] = payload
    cache.set_many(payloads, timeout=KEEP_S)


def run_network_pass(network: Network | int, now: dt.datetime | None = None) -> NetworkSchedule:
    """Schedule one network now (or at ``now``) and cache every site's list."""
    network_id = network if isinstance(network, int) else network.pk
    now = now or _now()
    # This pass covers every change so far: later changes may queue the next one.
    cache.delete(queued_key(network_id))
    data_as_of = time.time()
    sites, refused = load_sites(network_id)
    result = schedule_network(load_targets(network_id, now), sites, now, scheduler_config())
    # A refused site still gets a (empty) list saying why: its agent's requests stay cache reads.
    for site, reason in refused.items():
        result.sites[site.pk] = SiteSchedule(site.pk, site.name, result.generated_at, result.valid_until,
                                             reason=reason)
    store(result, network_id, data_as_of)
    log.info("scheduled network %s: %d sites, %d entries in %.2f s", network_id, len(result.sites),
             sum(len(s.entries) for s in result.sites.values()), result.stats.get("total_s", 0.0))
    return result


def run_all_passes(now: dt.datetime | None = None) -> dict[str, dict[str, float]]:
    """A pass for every active network; returns each network's pass figures by slug.

    A network whose pass fails is logged and left out: one tenant's data must never stop
    every other network's lists.
    """
    figures = {}
    for network in Network.objects.filter(is_active=True):
        try:
            figures[network.slug] = run_network_pass(network, now).stats
        except Exception:  # any failure is one network's, logged with its traceback
            log.exception("the pass of network %s (%s) failed; the other networks go on", network.pk, network.slug)
    return figures


def cached_list(site_id: int) -> dict | None:
    """The site's cached list, or None before its network's first pass."""
    return cache.get(list_key(site_id))


def mark_stale(network_id: int, site_id: int | None = None, reason: str = "") -> None:
    """Flag a network's lists (or one site's) as out of date and ask for a new pass."""
    # Wall-clock seconds, compared with the list's ``stored_at``: independent of the pass time.
    mark = {"at": time.time(), "reason": reason}
    cache.set(_stale_key("site", site_id) if site_id is not None else _stale_key("network", network_id), mark,
              timeout=KEEP_S)
    request_pass(network_id)


def stale_keys(network_id: int, site_id: int) -> list[str]:
    return [_stale_key("network", network_id), _stale_key("site", site_id)]


def stale_reason(payload: dict, site_id: int, marks: dict | None = None) -> str:
    """Why a cached list is out of date ('' when it is current); ``marks`` if already read."""
    if marks is None:
        marks = cache.get_many(stale_keys(payload["network_id"], site_id))
    newer = [m for k, m in marks.items() if k.startswith(f"{PREFIX}:stale:") and m["at"] > payload["stored_at"]]
    if newer:
        return max(newer, key=lambda m: m["at"])["reason"] or "changed since the last pass"
    if _now().timestamp() > payload["valid_unix"] + 60.0:
        return "the list outlived its validity (is the scheduler's beat running?)"
    return ""


def request_pass(network_id: int) -> None:
    """Queue a pass for the network after the current transaction, at most one per minute."""
    if cache.add(queued_key(network_id), 1, timeout=60):
        from scheduling.tasks import schedule_network_pass
        transaction.on_commit(lambda: schedule_network_pass.delay(network_id))


READINESS = SchedulerConfig()


def live_readiness(site: Site) -> str:
    """Why the site cannot observe right now ('' when it can), from its row alone (cheap)."""
    state = SimpleNamespace(is_active=site.is_active, weather=site.weather_status,
                            weather_reported_at=_unix(site.weather_reported_at),
                            weather_max_age_s=settings.DATAS_WEATHER_MAX_AGE_SECONDS)
    return site_readiness(state, _now().timestamp(), READINESS)


def site_list(site: Site) -> dict:
    """What the site should do now: its cached list, checked against its live weather report.

    Computes the network's pass on the spot when nothing is cached yet. A stale list is
    served (flagged ``stale``) while a new pass is queued; without a broker the pass runs
    at once and the fresh list is served.
    """
    # One round trip for the list and both stale marks: this is the agent's hot path.
    found = cache.get_many([list_key(site.pk), *stale_keys(site.network_id, site.pk)])
    payload = found.get(list_key(site.pk))
    if payload is None:
        run_network_pass(site.network_id)
        payload = cached_list(site.pk) or {}
        found = {}
    reason = stale_reason(payload, site.pk, found or None) if payload else ""
    if reason:
        request_pass(site.network_id)
        payload = cached_list(site.pk) or payload
        reason = stale_reason(payload, site.pk)
    payload = dict(payload, stale=bool(reason), stale_reason=reason)
    blocked = live_readiness(site)
    if blocked:
        payload.update(entries=[], reason=blocked)
    return payload


def list_state(site: Site) -> dict[str, Any]:
    """``last_changed``, ``etag`` and ``stale`` of a site's list, from the cache alone (cheap).

    Before the network's first pass all are empty (``etag`` ``''``): pull the list once.
    """
    found = cache.get_many([list_key(site.pk), *stale_keys(site.network_id, site.pk)])
    payload = found.get(list_key(site.pk))
    if payload is None:
        return {"last_changed": None, "generated_at": None, "valid_until": None, "etag": "", "stale": True}
    return {"last_changed": payload["last_changed"], "generated_at": payload["generated_at"],
            "valid_until": payload["valid_until"], "etag": payload["etag"],
            "stale": bool(stale_reason(payload, site.pk, found))}
