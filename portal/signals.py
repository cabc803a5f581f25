"""Keep a short history of each site's reported status and weather, from its heartbeats."""
from __future__ import annotations

from datetime import timedelta

from django.db.models.signals import post_save
from django.dispatch import receiver

from portal.models import SiteStatusSample
from sites.models import Site

# One sample per site per this interval, unless the status or the weather changed.
SAMPLE_INTERVAL = timedelta(minutes=5)
HISTORY_KEPT = timedelta(days=30)


@receiver(post_save, sender=Site, dispatch_uid="portal-site-status-history")
def sample_heartbeat(sender, instance: Site, update_fields=None, **kwargs) -> None:
    """On a heartbeat (a save that updates ``last_seen``), record the reported state if new."""
    if not update_fields or "last_seen" not in update_fields or instance.last_seen is None:
        return
    last = SiteStatusSample.objects.filter(site=instance).order_by("-at").first()
    unchanged = last is not None and (last.status, last.weather_status) == (instance.status,
                                                                            instance.weather_status)
    if unchanged and instance.last_seen - last.at < SAMPLE_INTERVAL:
        return
    SiteStatusSample.objects.create(site=instance, at=instance.last_seen, status=instance.status,
                                    weather_status=instance.weather_status)
    if last is None or instance.last_seen - last.at >= SAMPLE_INTERVAL:
        SiteStatusSample.objects.filter(site=instance, at__lt=instance.last_seen - HISTORY_KEPT).delete()
