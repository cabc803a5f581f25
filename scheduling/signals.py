"""What marks ranked lists stale: observations, alerts, weather reports, target and campaign edits.

Connected in ``NetworkConfig.ready``. Each handler only flags the lists and queues a pass
(:func:`scheduling.passes.mark_stale`), so saving a row stays cheap.
"""
from __future__ import annotations

from django.core.cache import cache
from django.db.models.signals import post_delete, post_migrate, post_save
from django.dispatch import receiver

from observations.models import Observation
from observations.services import observations_stored
from scheduling.passes import cached_list, ensure_beat_entry, live_readiness, mark_stale
from scheduling.ranking import row_key
from sites.models import Site
from targets.models import Alert, Campaign, CampaignTarget, Target, TargetAlias

# Site fields the scheduler reads; a heartbeat that touches none of them changes nothing.
SCHEDULING_FIELDS = frozenset({"latitude", "longitude", "elevation_m", "filters", "fov_arcmin", "limiting_mag",
                               "horizon", "min_altitude_deg", "ha_limit_east_h", "ha_limit_west_h", "availability",
                               "reliability", "is_active", "weather_status", "weather_reported_at"})


@receiver(post_save, sender=Observation, dispatch_uid="schedule-stale-observation")
def observation_saved(sender, instance: Observation, created: bool, **kwargs) -> None:
    if created:
        cache.delete(row_key(instance.target_id))  # its coverage counters move
        mark_stale(instance.network_id, reason=f"new observation of target {instance.target_id}")


@receiver(observations_stored, dispatch_uid="schedule-stale-observations")
def observations_added(sender, network_ids: set[int], target_ids: set[int], **kwargs) -> None:
    """A batch of uploads (bulk-created, so without post_save): one mark per network."""
    cache.delete_many([row_key(pk) for pk in target_ids])
    for network_id in network_ids:
        mark_stale(network_id, reason=f"{len(target_ids)} targets observed")


@receiver(post_save, sender=Alert, dispatch_uid="schedule-stale-alert")
def alert_saved(sender, instance: Alert, **kwargs) -> None:
    mark_stale(instance.network_id, reason=f"alert {instance.source} {instance.external_id}")


@receiver(post_save, sender=Target, dispatch_uid="schedule-stale-target")
@receiver(post_delete, sender=Target, dispatch_uid="schedule-stale-target-deleted")
def target_changed(sender, instance: Target, **kwargs) -> None:
    cache.delete(row_key(instance.pk))
    mark_stale(instance.network_id, reason=f"target {instance.name} changed")


@receiver(post_save, sender=TargetAlias, dispatch_uid="schedule-alias")
@receiver(post_delete, sender=TargetAlias, dispatch_uid="schedule-alias-deleted")
def alias_changed(sender, instance: TargetAlias, **kwargs) -> None:
    cache.delete(row_key(instance.target_id))


@receiver(post_save, sender=Campaign, dispatch_uid="schedule-stale-campaign")
@receiver(post_delete, sender=Campaign, dispatch_uid="schedule-stale-campaign-deleted")
def campaign_changed(sender, instance: Campaign, **kwargs) -> None:
    mark_stale(instance.network_id, reason=f"campaign {instance.name} changed")


@receiver(post_save, sender=CampaignTarget, dispatch_uid="schedule-stale-membership")
@receiver(post_delete, sender=CampaignTarget, dispatch_uid="schedule-stale-membership-deleted")
def membership_changed(sender, instance: CampaignTarget, **kwargs) -> None:
    mark_stale(instance.campaign.network_id, reason=f"campaign {instance.campaign_id} targets changed")


@receiver(post_save, sender=Site, dispatch_uid="schedule-stale-site")
def site_saved(sender, instance: Site, created: bool, update_fields=None, **kwargs) -> None:
    """An edit of the site's limits re-plans the network; a weather report only when it changes
    whether the site can observe (agents report every minute or so)."""
    fields = set(update_fields) if update_fields is not None else None
    if fields is not None and not fields & SCHEDULING_FIELDS:
        return
    if fields is not None and fields <= {"weather_status", "weather_reported_at", "weather", "last_seen", "status"}:
        cached = cached_list(instance.pk)
        can_observe = not live_readiness(instance)
        had_list = cached is not None and not cached.get("reason", "").startswith("weather")
        if cached is not None and can_observe == had_list:
            return
        mark_stale(instance.network_id, reason=f"weather at {instance.name}: {instance.weather_status}")
        return
    mark_stale(instance.network_id, reason=f"site {instance.name} changed")


def beat_entry_after_migrate(sender, **kwargs) -> None:
    """Make sure the periodic scheduler pass exists once the beat tables do."""
    if sender.name == "network":
        ensure_beat_entry()


post_migrate.connect(beat_entry_after_migrate, dispatch_uid="schedule-beat-entry")
