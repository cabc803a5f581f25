"""Who may see and change what in the portal: every lookup goes through these helpers.

Detail pages look rows up among the networks the person belongs to; a row of any other
network is answered with 404, exactly like a row that does not exist.
"""
from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404

from network.models import MANAGING_ROLES, OBSERVING_ROLES, Network
from network.tenancy import networks_for, role_in
from sites.models import Site


def get_visible_or_404(queryset: QuerySet, user, **lookup) -> Model:
    """One row of ``queryset`` whose network the user belongs to; anything else is 404."""
    try:
        return queryset.filter(network__in=networks_for(user)).get(**lookup)
    except (queryset.model.DoesNotExist, ValueError, TypeError) as exc:
        raise Http404(f"no {queryset.model._meta.verbose_name} here") from exc


def is_manager(user, network: Network | int) -> bool:
    return role_in(user, network) in MANAGING_ROLES


def can_observe(user, network: Network | int) -> bool:
    """May register sites and submit observations in ``network`` (owner, manager, observer)."""
    return role_in(user, network) in OBSERVING_ROLES


def can_edit_site(user, site: Site) -> bool:
    """The site's owner (still an observing member) or a manager of its network."""
    role = role_in(user, site.network_id)
    return role in MANAGING_ROLES or (site.owner_id == user.pk and role in OBSERVING_ROLES)


def require(allowed: bool, message: str) -> None:
    """Raise 403 with ``message`` unless ``allowed``."""
    if not allowed:
        raise PermissionDenied(message)
