"""The agent's poll, ``GET /api/v1/targets``: served as ready bytes, with no query.

Every agent of a network asks for its list every minute or so, so this is the API's hottest
request. :func:`serve_list` keeps each site's answer (per query) in the cache as the bytes
sent, under a fingerprint of everything the answer depends on: the pass's list (when it was
stored, its ETag), the stale marks newer than it, the site's live readiness and weather. One
cache read of those finds the answer; an ``If-None-Match`` that matches is a 304 without
building anything. The body is rebuilt (:func:`scheduling.ranking.ranked_targets`) only when the
fingerprint moved.

:func:`agent_targets` is the URL's view. A poll with a site key whose record is in the cache
(sites.services: put there by every full authentication, dropped when the key is revoked or
its site or network deactivated) is answered here: key compared in constant time, the
throttle counted (one Redis round trip), the list served, without DRF or the database. Anything
else (people, another query, a key not in the cache, a blocked address, a spent budget, a
``last_used_at`` due to be written) goes through the DRF view, which says what is wrong.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from django.core.cache import cache
from django.http import HttpResponse, HttpResponseNotModified
from django.views.decorators.csrf import csrf_exempt
from rest_framework.renderers import JSONRenderer

from network.keys import SITE_KEY_KIND, MalformedKey, parse_key
from network.throttles import AgentRateThrottle, client_address, count_in_window, counted_key, parse_rate
from scheduling.passes import (
    PREFIX,
    list_key,
    live_readiness,
    queued_key,
    request_pass,
    stale_keys,
    stale_reason,
)
from scheduling.ranking import ranked_targets, served_row
from sites.services import SiteState, key_record_key, site_state_key, touch_key

# The ranked list's query: how many rows (RankingQuerySerializer's bounds and default).
DEFAULT_COUNT, MAX_COUNT = 20, 500
SERVED_S = 3600
UNKNOWN_WEATHER = "unknown: this site has never reported weather; planned as if clear"


@dataclass(frozen=True)
class Served:
    """A site's list as sent: its ETag (quoted) and the JSON bytes."""

    etag: str
    body: bytes


def weather_note(site: SiteState) -> str:
    """The weather the list was planned for, as the list says it."""
    return UNKNOWN_WEATHER if site.weather_reported_at is None else site.weather_status


def served_key(site_id: int, count: int, priority_min: float | None) -> str:
    return f"{PREFIX}:served:{site_id}:{count}:{priority_min}"


def _fingerprint(site: SiteState, found: dict) -> tuple[list | None, str]:
    """What the answer depends on, from one cache read (None before the network's first pass)."""
    payload = found.get(list_key(site.pk))
    if payload is None:
        return None, ""
    reason = stale_reason(payload, site.pk, found)
    marks = sorted(m["at"] for k, m in found.items() if k.startswith(f"{PREFIX}:stale:") and m)
    return [payload["stored_at"], payload["etag"], marks, reason, live_readiness(site), weather_note(site)], reason


def poll_keys(site_id: int, network_id: int, count: int, priority_min: float | None) -> list[str]:
    """The cache entries one poll reads, in one round trip: the list, its stale marks, whether a
    pass is queued, and the ready answer."""
    return [list_key(site_id), *stale_keys(network_id, site_id), queued_key(network_id),
            served_key(site_id, count, priority_min)]


def serve_list(site: SiteState, count: int, priority_min: float | None = None, campaign=None,
               found: dict | None = None) -> Served:
    """The site's ranked list as sent, from the cache when nothing it depends on moved.

    ``found``: the entries of :func:`poll_keys` when the caller has read them already.
    """
    names = poll_keys(site.pk, site.network_id, count, priority_min)
    if found is None:
        found = cache.get_many(names)
    fingerprint, reason = _fingerprint(site, found)
    if reason and names[3] not in found:
        # A pass is due and none is queued: ask for one; without a broker it runs now.
        request_pass(site.network_id)
        found = cache.get_many(names)
        fingerprint, _ = _fingerprint(site, found)
    # Only the plain list is kept ready: a client inventing priority_min values must not grow the cache.
    cacheable = campaign is None and priority_min is None
    ready = found.get(names[-1])
    if cacheable and fingerprint is not None and ready and ready["fingerprint"] == fingerprint:
        return Served(ready["etag"], ready["body"])
    ranked = ranked_targets(site, count, priority_min, campaign)
    etag = f'"{ranked.etag}-{count}-{priority_min}-{campaign.pk if campaign else None}"' if ranked.etag else ""
    body = JSONRenderer().render({
        "site_id": site.pk, "network": site.network_slug, "generated_at": ranked.generated_at,
        "valid_until": ranked.valid_until, "last_changed": ranked.last_changed, "stale": ranked.stale,
        "reason": ranked.reason, "weather": weather_note(site),
        "targets": [served_row(rank, item) for rank, item in enumerate(ranked.targets, start=1)]})
    if cacheable:
        # The fingerprint read before building: if something moved meanwhile, the next poll rebuilds.
        fingerprint = fingerprint or _fingerprint(site, cache.get_many(names[:-1]))[0]
        if fingerprint is not None:
            cache.set(names[-1], {"fingerprint": fingerprint, "etag": etag, "body": body}, timeout=SERVED_S)
    return Served(etag, body)


def respond(served: Served, if_none_match: str | None) -> HttpResponse:
    """200 with the bytes, or 304 when the agent already holds them."""
    if served.etag and if_none_match == served.etag:
        return HttpResponseNotModified(headers={"ETag": served.etag})
    response = HttpResponse(served.body, content_type="application/json")
    if served.etag:
        response["ETag"] = served.etag
    return response


def _query(request) -> tuple[int | None, int, float | None] | None:
    """(site_id, count, priority_min) of a plain poll, or None for anything the DRF view must check."""
    params = request.GET
    if not set(params) <= {"site_id", "count", "priority_min"} or any(len(params.getlist(k)) > 1 for k in params):
        return None
    site_id, count, priority_min = params.get("site_id"), params.get("count"), params.get("priority_min")
    if site_id is not None and not (site_id.isascii() and site_id.isdigit()):
        return None
    if count is not None and not (count.isascii() and count.isdigit() and 1 <= int(count) <= MAX_COUNT):
        return None
    if priority_min is not None:
        try:
            priority_min = float(priority_min)
        except ValueError:
            return None
        if not math.isfinite(priority_min):
            return None
    return (int(site_id) if site_id is not None else None, int(count) if count is not None else DEFAULT_COUNT,
            priority_min)


# Site key lookup -> (site id, network id): fixed for a key's life, so a warm worker reads the
# key's record and everything the poll needs in one round trip.
_KEY_SITES: dict[str, tuple[int, int]] = {}
_KEY_SITES_MAX = 100_000


def fast_poll(request) -> HttpResponse | None:
    """The answer to an agent's plain poll from the cache alone, or None (the DRF view answers).

    Two cache round trips on a warm worker: one read of the key's record, the address's block,
    the site's state and the list's entries; one throttle count (after the key is verified, so
    nobody spends another's budget).
    """
    header = request.META.get("HTTP_AUTHORIZATION", "")
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer" or not presented.startswith(SITE_KEY_KIND + "_") or not presented.isascii():
        return None
    query = _query(request)
    if query is None:
        return None
    site_id, count, priority_min = query
    try:
        _, lookup = parse_key(presented)
    except MalformedKey:
        return None
    block = f"authblock:{client_address(request)}"
    names = [key_record_key(lookup), block]
    known = _KEY_SITES.get(lookup)
    if known is not None:
        names += [site_state_key(known[0]), *poll_keys(*known, count, priority_min)]
    found = cache.get_many(names)
    record = found.get(names[0])
    if record is None or block in found or not record.matches(presented):
        return None
    if site_id not in (None, record.site_id):
        return None
    now = time.time()
    if record.needs_touch(now):  # once a minute per key: last_used_at, as the full authentication writes it
        record = touch_key(record, now)
    if known is None:
        if len(_KEY_SITES) >= _KEY_SITES_MAX:
            _KEY_SITES.clear()
        _KEY_SITES[lookup] = (record.site_id, record.network_id)
        found.update(cache.get_many([site_state_key(record.site_id),
                                     *poll_keys(record.site_id, record.network_id, count, priority_min)]))
    site = found.get(site_state_key(record.site_id))
    if site is None or not site.is_active:
        return None
    allowed, window_s = parse_rate(AgentRateThrottle().rate())
    counted = count_in_window(f"{AgentRateThrottle.scope}:{record.key_id}", window_s)
    if counted[0] > allowed:
        request.META[counted_key(AgentRateThrottle.scope)] = counted  # the DRF view answers 429, not counting again
        return None
    return respond(serve_list(site, count, priority_min, found=found), request.META.get("HTTP_IF_NONE_MATCH"))


def agent_targets(drf_view):
    """``/api/v1/targets``: an agent's plain poll answered by :func:`fast_poll`, the rest by ``drf_view``."""
    @csrf_exempt
    def view(request, *args, **kwargs):
        if request.method in ("GET", "HEAD"):
            response = fast_poll(request)
            if response is not None:
                return response
        return drf_view(request, *args, **kwargs)

    view.cls = getattr(drf_view, "cls", None)
    view.initkwargs = getattr(drf_view, "initkwargs", {})
    view.actions = getattr(drf_view, "actions", None)
    return view


__all__ = ["Served", "agent_targets", "fast_poll", "serve_list", "site_state_key"]
