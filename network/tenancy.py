"""Which networks a person may see and act in; every tenant query starts here."""
from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from network.models import MANAGING_ROLES, OBSERVING_ROLES, Membership, Network

SESSION_KEY = "datas_network_id"


def networks_for(user: AbstractBaseUser | AnonymousUser, roles: Iterable[str] | None = None) -> QuerySet[Network]:
    """Active networks where ``user`` holds one of ``roles`` (any role when None).

    A superuser is treated as a member of every network: it administers the deployment.
    """
    if not getattr(user, "is_authenticated", False):
        return Network.objects.none()
    networks = Network.objects.filter(is_active=True)
    if getattr(user, "is_superuser", False):
        return networks
    memberships = Membership.objects.filter(user=user)
    if roles is not None:
        memberships = memberships.filter(role__in=list(roles))
    return networks.filter(id__in=memberships.values("network_id"))


def managed_networks(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Network]:
    """Networks the user runs (owner or manager)."""
    return networks_for(user, MANAGING_ROLES)


def observing_networks(user: AbstractBaseUser | AnonymousUser) -> QuerySet[Network]:
    """Networks where the user may register sites and submit observations."""
    return networks_for(user, OBSERVING_ROLES)


def role_in(user: AbstractBaseUser | AnonymousUser, network: Network | int) -> str | None:
    """The user's role in ``network``, ``"owner"`` for a superuser, None for a non-member."""
    if not getattr(user, "is_authenticated", False):
        return None
    if getattr(user, "is_superuser", False):
        return "owner"
    network_id = network if isinstance(network, int) else network.pk
    return Membership.objects.filter(user=user, network_id=network_id).values_list("role", flat=True).first()


def current_network(request) -> Network | None:
    """The network the person picked in the portal (kept in the session), else their first one."""
    networks = networks_for(request.user)
    chosen = request.session.get(SESSION_KEY)
    network = networks.filter(pk=chosen).first() if chosen else None
    return network or networks.first()


def switch_network(request, network: Network) -> None:
    """Remember ``network`` as the current one; the caller has checked membership."""
    request.session[SESSION_KEY] = network.pk
