"""Keep the cached key records and site states (sites.services) true to the database."""
from __future__ import annotations

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from network.models import Network
from sites.models import Site, SiteKey
from sites.services import forget_site_keys, key_record_key, remember_site_state


@receiver(post_save, sender=Site, dispatch_uid="sites-cached-state")
def site_saved(sender, instance: Site, update_fields=None, **kwargs) -> None:
    """A heartbeat, an edit: the poll sees the new state at once; a deactivation drops its keys."""
    if update_fields is None or "is_active" in update_fields:
        forget_site_keys(site_ids=[instance.pk])
    remember_site_state(instance)


@receiver(post_delete, sender=Site, dispatch_uid="sites-cached-state-deleted")
def site_deleted(sender, instance: Site, **kwargs) -> None:
    forget_site_keys(site_ids=[instance.pk])


@receiver(post_save, sender=SiteKey, dispatch_uid="sites-cached-key")
@receiver(post_delete, sender=SiteKey, dispatch_uid="sites-cached-key-deleted")
def key_changed(sender, instance: SiteKey, **kwargs) -> None:
    from django.core.cache import cache

    cache.delete(key_record_key(instance.lookup))


@receiver(post_save, sender=Network, dispatch_uid="sites-cached-network")
def network_saved(sender, instance: Network, **kwargs) -> None:
    forget_site_keys(network_ids=[instance.pk])
