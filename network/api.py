"""What every API v1 view shares: authentication, tenant scope, roles, throttling, pages.

Two kinds of caller reach the API:

* people, through the session (the portal) or a personal token (``Bearer dut_...``), acting in
  the networks where they hold a Membership;
* site agents, through a site key (``Bearer dsk_...``), acting for exactly one site. Their
  ``request.user`` is a `SiteAgent` and ``request.auth`` the `SiteKey`.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any, Protocol

from django.conf import settings
from django.db.models import QuerySet
from django.http import Http404
from django.utils.module_loading import import_string
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import JSONParser
from rest_framework.permissions import BasePermission

from network.keys import KeyRejected
from network.models import MANAGING_ROLES, Network
from network.tenancy import networks_for, role_in
from network.throttles import record_failure, refuse_if_blocked

NETWORK_HEADER = "HTTP_X_DATAS_NETWORK"


class SiteLike(Protocol):
    """What the permission checks read of a site (sites.models.Site)."""

    pk: int
    owner_id: int | None
    network_id: int


@cache
def key_authenticators() -> dict[str, Callable[[str], tuple[Any, Any]]]:
    """Key kind (the prefix before ``_``) -> function taking the presented key, returning (user, auth).

    Listed in ``settings.DATAS_KEY_AUTHENTICATORS`` as dotted paths, so the apps that issue keys
    (network: personal tokens; sites: site keys) plug in without this module importing them.
    A function raises ``network.keys.KeyRejected`` (or a subclass) for a key it refuses.
    """
    return {kind: import_string(path) for kind, path in settings.DATAS_KEY_AUTHENTICATORS.items()}


class BearerKeyAuthentication(BaseAuthentication):
    """``Authorization: Bearer <key>`` with a site key (agents) or a personal token (people)."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"bearer":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header must read 'Bearer <key>'")
        try:
            presented = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("the key contains non-ASCII characters") from exc
        refuse_if_blocked(request)
        kind = presented.split("_", 1)[0]
        authenticator = key_authenticators().get(kind)
        problem = "unknown key: site keys start 'dsk_', personal tokens 'dut_'"
        if authenticator is not None:
            try:
                return authenticator(presented)
            except KeyRejected as exc:
                problem = str(exc)
        wait = record_failure(request)
        if wait:
            raise exceptions.Throttled(wait=wait, detail=f"{problem}; too many failed attempts from this address")
        raise exceptions.AuthenticationFailed(problem)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="datas"'


def is_agent(request) -> bool:
    """Whether the caller is a site agent (a site key's principal, sites.auth.SiteAgent)."""
    return getattr(request.user, "is_site_agent", False)


class NotForAgents(BasePermission):
    """People only: a site key gets 403 here."""

    message = "site keys may not use this endpoint; use a personal token or log in"

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated and not is_agent(request))


class Authenticated(BasePermission):
    """A logged-in person or a site agent."""

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated)


class Pagination(LimitOffsetPagination):
    default_limit = 100
    max_limit = 1000


def scoped_networks(request, roles: Iterable[str] | None = None) -> QuerySet[Network]:
    """Networks the caller may act in, narrowed by ``?network=<slug>`` or ``X-DATAS-Network``.

    An agent's scope is its site's network. A person's is every network where they hold one
    of ``roles`` (any role when None).
    """
    if is_agent(request):
        return Network.objects.filter(pk=request.auth.network_id, is_active=True)
    networks = networks_for(request.user, roles)
    slug = request.query_params.get("network") or request.META.get(NETWORK_HEADER)
    if slug:
        networks = networks.filter(slug=slug)
    return networks


def network_for_write(request, slug: str | None, roles: Iterable[str]) -> Network:
    """The network a person is creating something in, checked against their role.

    ``slug`` may be omitted when the person can act in exactly one network.
    """
    allowed = scoped_networks(request, roles)
    if slug:
        network = allowed.filter(slug=slug).first()
        if network is None:
            raise exceptions.ValidationError(
                {"network": [f"you cannot do this in network {slug!r} (not a member, or your role is too low)"]})
        return network
    choices = list(allowed[:2])
    if len(choices) == 1:
        return choices[0]
    if not choices:
        raise exceptions.PermissionDenied("your role does not allow this in any of your networks")
    raise exceptions.ValidationError({"network": ["you belong to several networks: give the network's slug"]})


def can_manage(request, network_id: int) -> bool:
    return not is_agent(request) and role_in(request.user, network_id) in MANAGING_ROLES


def can_operate_site(request, site: SiteLike) -> bool:
    """Agents of the site, its owner, and the network's managers may act for a site."""
    if is_agent(request):
        return request.auth.site_id == site.pk
    return site.owner_id == request.user.pk or can_manage(request, site.network_id)


def get_scoped_or_404(queryset: QuerySet, **lookup):
    """One row from an already-scoped queryset; rows of other networks look absent (404)."""
    try:
        return queryset.get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"no {queryset.model._meta.verbose_name} with {lookup}") from exc


def find_nul(value: object, path: str = "") -> str | None:
    """Where a NUL character sits in parsed JSON (``"weather.sky"``), or None.

    PostgreSQL stores neither a NUL in text nor ``\\u0000`` in jsonb, so one would turn a
    request into a 500 deep in the database; it is refused at the door instead.
    """
    if isinstance(value, str):
        return (path or "(the body)") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            found = find_nul(item, where)
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = find_nul(item, f"{path}[{index}]")
            if found:
                return found
    return None


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, refusing NUL characters anywhere in the body with a 400 that says where."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        where = find_nul(data)
        if where:
            raise exceptions.ParseError(f"NUL characters (\\u0000) are not allowed in text: found in {where}")
        return data
