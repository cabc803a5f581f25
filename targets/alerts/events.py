"""What an event does to a network's targets: create, refine, tile, join campaigns, retract.

Targets made from alerts carry ``metadata.alert_event`` (``"<source>:<event id>"``), so later
notices of the same event (updates, retractions) find every target they made, tiles included.
"""
from __future__ import annotations

import datetime as dt
import logging

from django.db.models import Min, Q

from network.models import Network
from sites.models import Site
from targets.alerts.models import AlertRule
from targets.alerts.sources.base import ParsedAlert
from targets.alerts.tiling import TilingError, tile_localisation
from targets.models import Campaign, CampaignTarget, CoveragePolicy, Target, TargetAlias, TargetType, name_key

log = logging.getLogger(__name__)

TILE_COVERAGE = 0.9
TYPES = {"solar_system": TargetType.ASTEROID}


def tiling_fov_deg(network: Network, default_arcmin: float) -> float:
    """Side of a tile: the smallest field of view among the network's active sites (degrees)."""
    smallest = (Site.objects.filter(network=network, is_active=True, fov_arcmin__gt=0)
                .aggregate(fov=Min("fov_arcmin"))["fov"])
    return (smallest or default_arcmin) / 60.0


def event_targets(network: Network, event_key: str) -> list[Target]:
    return list(Target.objects.filter(network=network, metadata__alert_event=event_key).order_by("pk"))


def targets_by_event(network: Network, event_keys: set[str]) -> dict[str, list[Target]]:
    """The targets earlier alerts made, per event key (one query for a whole batch)."""
    found: dict[str, list[Target]] = {}
    for target in Target.objects.filter(network=network, metadata__alert_event__in=sorted(event_keys)).order_by("pk"):
        found.setdefault(target.metadata["alert_event"], []).append(target)
    return found


def _time_windows(alert: ParsedAlert, rule: AlertRule, now: dt.datetime) -> list[dict]:
    if not rule.time_critical_hours:
        return []
    start = alert.event_time or now
    end = start + dt.timedelta(hours=rule.time_critical_hours)
    return [{"start": start.isoformat(), "end": end.isoformat(), "priority_boost": rule.time_critical_boost}]


def is_urgent(alert: ParsedAlert, rule: AlertRule | None, now: dt.datetime) -> bool:
    """Inside the rule's time-critical window (a pass is run at once, not at the next beat)."""
    if rule is None or not rule.time_critical_hours:
        return False
    return now < (alert.event_time or now) + dt.timedelta(hours=rule.time_critical_hours)


def campaign_for(network: Network, rule: AlertRule, alert: ParsedAlert) -> Campaign | None:
    """The rule's campaign, or the one named by ``campaign_name`` (created when missing)."""
    if rule.campaign_id:
        return rule.campaign
    if not rule.campaign_name:
        return None
    name = rule.campaign_name.replace("{event}", alert.event_name or alert.event_id)[:120]
    campaign, _ = Campaign.objects.get_or_create(
        network=network, name=name,
        defaults={"description": f"Created by alert rule {rule.name!r} for {alert.event_key}."})
    if not campaign.is_active:
        campaign.is_active = True
        campaign.save(update_fields=["is_active"])
    return campaign


def _join(campaign: Campaign | None, targets: list[Target]) -> None:
    if campaign is None:
        return
    present = set(CampaignTarget.objects.filter(campaign=campaign, target__in=targets).values_list("target_id", flat=True))
    for target in targets:
        if target.pk not in present:
            CampaignTarget.objects.create(campaign=campaign, target=target)


def join_campaign(network: Network, rule: AlertRule, alert: ParsedAlert, target_id: int) -> None:
    """Put an existing target the alert matched into the rule's campaign."""
    campaign = campaign_for(network, rule, alert)
    if campaign is not None:
        _join(campaign, list(Target.objects.filter(pk=target_id, network=network)))


def _upsert(network: Network, name: str, fields: dict, existing: list[Target]) -> Target:
    """The event's target called ``name`` (among ``existing``) updated with ``fields``, or a new one."""
    target = next((t for t in existing if t.name_key == name_key(name)), None)
    if target is None:
        return Target.objects.create(network=network, name=name, **fields)
    for key, value in fields.items():
        setattr(target, key, value)
    target.save()
    return target


def _add_aliases(target: Target, names: list[str]) -> None:
    keys = {name_key(n): n for n in names if name_key(n) and name_key(n) != target.name_key}
    if not keys:
        return
    taken = set(Target.objects.filter(network_id=target.network_id, name_key__in=keys).values_list("name_key", flat=True))
    taken |= set(TargetAlias.objects.filter(network_id=target.network_id, name_key__in=keys)
                 .values_list("name_key", flat=True))
    for key, name in keys.items():
        if key not in taken:
            TargetAlias.objects.create(target=target, name=name[:120])


def _fields(alert: ParsedAlert, rule: AlertRule, now: dt.datetime) -> tuple[str, float, dict, dict]:
    """The new target's name, the alert's radius (degrees), its common fields and metadata."""
    base = alert.event_name or f"{alert.source} {alert.event_id}"
    radius = max(alert.error_radius_deg, max(alert.ellipse[:2]) if alert.ellipse else 0.0)
    metadata = {"alert_event": alert.event_key, "alert_rule": rule.pk, "error_radius_deg": radius,
                "alert_source": alert.source}
    common = dict(target_type=TYPES.get(alert.alert_type, TargetType.TRANSIENT), priority=rule.target_priority,
                  cadence_hours=rule.target_cadence_hours, time_windows=_time_windows(alert, rule, now),
                  is_active=True)
    if alert.magnitude is not None and -30 <= alert.magnitude <= 40:
        common["magnitude"] = alert.magnitude
    return base, radius, common, metadata


def needs_tiles(alert: ParsedAlert, rule: AlertRule, fov_deg: float) -> bool:
    """Whether the alert's error region is to be covered by tiles rather than one target."""
    radius = max(alert.error_radius_deg, max(alert.ellipse[:2]) if alert.ellipse else 0.0)
    return rule.tile_large_regions and (alert.skymap is not None or radius > fov_deg / 2)


def new_point_target(network: Network, alert: ParsedAlert, rule: AlertRule, now: dt.datetime) -> Target:
    """An unsaved target for a new event with a small error region (saved with others by `save_new`)."""
    base, _, common, metadata = _fields(alert, rule, now)
    return Target(network=network, name=base[:120], name_key=name_key(base[:120]), ra_deg=alert.ra_deg,
                  dec_deg=alert.dec_deg, metadata=metadata, **common)


def save_new(network: Network, pending: list[tuple[Target, ParsedAlert, AlertRule]]) -> None:
    """Insert new point targets in one statement, then their aliases and campaign places.

    No per-target signals: the caller marks the network's lists stale once for the batch.
    """
    if not pending:
        return
    Target.objects.bulk_create([target for target, _, _ in pending])
    campaigns: dict[tuple[int, str], Campaign | None] = {}
    for target, alert, rule in pending:
        if alert.aliases or name_key(alert.event_id) != target.name_key:
            _add_aliases(target, [alert.event_id, *alert.aliases])
        key = (rule.pk, alert.event_name if "{event}" in rule.campaign_name else "")
        if key not in campaigns:
            campaigns[key] = campaign_for(network, rule, alert)
        if campaigns[key] is not None:
            CampaignTarget.objects.create(campaign=campaigns[key], target=target)
    pending.clear()


def place_event(network: Network, alert: ParsedAlert, rule: AlertRule, existing: list[Target], now: dt.datetime,
                fov_deg: float) -> tuple[Target, int]:
    """Make or refine the event's targets: one target, or ranked tiles when the region is large.

    Returns the primary target (the most probable tile) and the number of tiles (0 for a point).
    Targets of the event the new localisation no longer needs are deactivated.
    """
    base, radius, common, metadata = _fields(alert, rule, now)
    tiles = []
    if needs_tiles(alert, rule, fov_deg):
        skymap = (alert.skymap.probability, alert.skymap.nside, alert.skymap.nested) if alert.skymap else None
        try:
            tiling = tile_localisation(alert.ra_deg, alert.dec_deg, radius, fov_deg, containment=alert.containment,
                                       ellipse=alert.ellipse, skymap=skymap, coverage=TILE_COVERAGE,
                                       max_tiles=rule.max_tiles)
            tiles = tiling.tiles
        except TilingError as exc:
            log.warning("%s: cannot tile its error region (%s); one target at its centre instead", alert.event_key, exc)
    made = []
    if tiles:
        best = tiles[0].probability
        for rank, tile in enumerate(tiles, start=1):
            fields = dict(common, ra_deg=tile.ra_deg, dec_deg=tile.dec_deg, target_type=TargetType.MOSAIC_PANEL,
                          priority=max(0.01, rule.target_priority * tile.probability / best),
                          metadata=dict(metadata, tile_rank=rank, tile_probability=round(tile.probability, 6),
                                        tiles_coverage=round(tiling.coverage, 4), size_arcmin=fov_deg * 60))
            made.append(_upsert(network, f"{base} tile {rank:03d}"[:120], fields, existing))
    else:
        point = next((t for t in existing if t.name_key == name_key(base)), None)
        if point is not None and point.is_active and radius >= (point.metadata or {}).get("error_radius_deg", 1e9):
            made.append(point)  # the new notice is no better than what we have
        else:
            made.append(_upsert(network, base[:120], dict(common, ra_deg=alert.ra_deg, dec_deg=alert.dec_deg,
                                                          metadata=metadata), existing))
        _add_aliases(made[0], [alert.event_id, *alert.aliases])
    keep = {t.pk for t in made}
    for old in existing:
        if old.pk not in keep and old.is_active:
            old.is_active = False
            old.save(update_fields=["is_active", "updated_at"])
    campaign = campaign_for(network, rule, alert)
    if campaign is None and tiles:  # tiles always travel together, spread over sites by the campaign's policy
        campaign, _ = Campaign.objects.get_or_create(
            network=network, name=f"{base} tiles"[:120],
            defaults={"description": f"Tiles covering {tiling.coverage:.0%} of {alert.event_key}.",
                      "coverage_policy": CoveragePolicy.DIVERSE})
    _join(campaign, made)
    return made[0], len(tiles)


def retract_event(network: Network, event_key: str, linked: set[int]) -> list[int]:
    """Deactivate the event's targets, and stop campaigns left with no active target.

    ``linked`` are targets earlier notices of the event were attached to; only those the
    alerts themselves made (or tiles) are deactivated, never a manager's own target.
    """
    targets = list(Target.objects.filter(network=network).filter(
        Q(metadata__alert_event=event_key) | Q(pk__in=linked, metadata__has_key="alert_event")))
    for target in targets:
        if target.is_active:
            target.is_active = False
            target.save(update_fields=["is_active", "updated_at"])
    campaigns = Campaign.objects.filter(network=network, is_active=True, memberships__target__in=targets).distinct()
    for campaign in campaigns:
        if not campaign.memberships.filter(target__is_active=True).exists():
            campaign.is_active = False
            campaign.save(update_fields=["is_active"])
    return [t.pk for t in targets]
