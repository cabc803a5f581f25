"""Site keys and heartbeats: the state changes of a site, in one place."""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone

from network import keys as network_keys
from network.keys import SITE_KEY_KIND, MalformedKey, generate_key, key_matches, parse_key
from network.models import Network
from sites.models import Site, SiteKey

# Writing last_used_at on every request would turn each agent poll into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class KeyRejected(network_keys.KeyRejected):
    """A presented site key is unknown, malformed or revoked."""


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``plaintext`` is shown to the user once and never stored."""

    key: SiteKey
    plaintext: str


class SiteNameTaken(ValueError):
    """A network already has a site of that name."""


def create_site(network: Network, owner: AbstractBaseUser, **fields) -> Site:
    """Register a site in ``network`` owned by ``owner``; `SiteNameTaken` if the name is in use there."""
    name = fields["name"]
    if Site.objects.filter(network=network, name=name).exists():
        raise SiteNameTaken(f"network {network.slug!r} already has a site named {name!r}")
    try:
        with transaction.atomic():
            return Site.objects.create(network=network, owner=owner, **fields)
    except IntegrityError as exc:  # a concurrent create with the same name
        raise SiteNameTaken("a site with this name was just created") from exc


def issue_site_key(site: Site, label: str = "", created_by: AbstractBaseUser | None = None) -> IssuedKey:
    """Create a new API key for ``site``; older keys stay valid until revoked (rotation)."""
    new = generate_key(SITE_KEY_KIND)
    key = SiteKey.objects.create(site=site, label=label, lookup=new.lookup, digest=new.digest,
                                 created_by=created_by)
    return IssuedKey(key=key, plaintext=new.plaintext)


def revoke_site_key(key: SiteKey) -> None:
    """Revoke a key at once; the agent using it gets 401 from its next request."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
    cache.delete(key_record_key(key.lookup))


# Active keys and their sites' live state are kept in the cache (Redis in production) so an
# agent's poll needs no query: a key's record for at most KEY_CACHE_S, dropped at once when it is
# revoked or its site or network is deactivated (forget_site_keys); a site's state rewritten on
# every save (a heartbeat included).
KEY_CACHE_S = 300
SITE_STATE_CACHE_S = 300


# Cached objects are pickled dataclasses: a change of their fields changes this version, so a
# new release never reads an old release's entries.
CACHE_VERSION = 1


def key_record_key(lookup: str) -> str:
    return f"datas:sitekey:v{CACHE_VERSION}:{lookup}"


def site_state_key(site_id: int) -> str:
    return f"datas:site-state:v{CACHE_VERSION}:{site_id}"


@dataclass(frozen=True)
class KeyRecord:
    """What the cache keeps of an active site key: enough to check a presented key without a query."""

    key_id: int
    lookup: str
    digest: str
    site_id: int
    network_id: int
    last_used_unix: float

    def matches(self, plaintext: str) -> bool:
        return key_matches(plaintext, self.digest)

    def needs_touch(self, now_unix: float) -> bool:
        """Whether ``last_used_at`` is due to be written (at most once per LAST_USED_RESOLUTION)."""
        return now_unix - self.last_used_unix > LAST_USED_RESOLUTION.total_seconds()


@dataclass(frozen=True)
class SiteState:
    """A site as its agent's poll needs it: identity, network and what readiness reads."""

    pk: int
    network_id: int
    network_slug: str
    is_active: bool
    weather_status: str
    weather_reported_at: datetime | None

    @classmethod
    def of(cls, site: Site) -> SiteState:
        return cls(site.pk, site.network_id, site.network.slug, site.is_active and site.network.is_active,
                   site.weather_status, site.weather_reported_at)


def remember_site_state(site: Site) -> SiteState:
    state = SiteState.of(site)
    cache.set(site_state_key(site.pk), state, timeout=SITE_STATE_CACHE_S)
    return state


def touch_key(record: KeyRecord, now_unix: float) -> KeyRecord:
    """Write the key's ``last_used_at`` (one UPDATE) and keep the record's copy of it in step."""
    now = datetime.fromtimestamp(now_unix, UTC)
    SiteKey.objects.filter(pk=record.key_id).update(last_used_at=now)
    touched = replace(record, last_used_unix=now_unix)
    cache.set(key_record_key(record.lookup), touched, timeout=KEY_CACHE_S)
    return touched


def forget_site_keys(site_ids: list[int] | None = None, network_ids: list[int] | None = None) -> None:
    """Drop the cached records of these sites' (or networks') keys and their sites' state.

    Called when keys are revoked or sites or networks deactivated, by any path (model saves
    through signals, the admin's bulk actions directly), so a refused key is refused at once.
    """
    keys = SiteKey.objects.all()
    keys = keys.filter(site_id__in=site_ids) if site_ids is not None else keys.filter(network_id__in=network_ids)
    lookups, sites = set(), set()
    for lookup, site_id in keys.values_list("lookup", "site_id"):
        lookups.add(key_record_key(lookup))
        sites.add(site_state_key(site_id))
    if site_ids is not None:
        sites.update(site_state_key(pk) for pk in site_ids)
    cache.delete_many([*lookups, *sites])


def authenticate_site_key(plaintext: str) -> SiteKey:
    """The active key matching ``plaintext``, with its site; raise `KeyRejected` otherwise.

    An accepted key's record goes into the cache for the agent's fast poll
    (scheduling.poll), with its site's live state.
    """
    try:
        kind, lookup = parse_key(plaintext)
    except MalformedKey as exc:
        raise KeyRejected(str(exc)) from exc
    if kind != SITE_KEY_KIND:
        raise KeyRejected("not a site key")
    key = SiteKey.objects.select_related("site", "site__network").filter(lookup=lookup).order_by().first()
    if key is None or not key_matches(plaintext, key.digest):
        raise KeyRejected("unknown site key")
    if not key.is_active:
        raise KeyRejected("this site key was revoked; ask the site owner for a new one")
    if not key.site.is_active or not key.site.network.is_active:
        raise KeyRejected("the site or its network is deactivated")
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        SiteKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    cache.set(key_record_key(lookup), KeyRecord(key.pk, lookup, key.digest, key.site_id, key.site.network_id,
                                                key.last_used_at.timestamp()), timeout=KEY_CACHE_S)
    remember_site_state(key.site)
    return key


@transaction.atomic
def record_heartbeat(site: Site, *, status: str | None = None, weather_status: str | None = None,
                     weather: dict | None = None) -> Site:
    """Mark ``site`` as seen now and store what its agent reports about itself and the sky."""
    now = timezone.now()
    site.last_seen = now
    fields = ["last_seen"]
    if status is not None:
        site.status = status
        fields.append("status")
    if weather_status is not None or weather is not None:
        if weather_status is not None:
            site.weather_status = weather_status
            fields.append("weather_status")
        if weather is not None:
            site.weather = weather
            fields.append("weather")
        site.weather_reported_at = now
        fields.append("weather_reported_at")
    site.save(update_fields=fields)
    return site
