"""Tenant scoping for the Django admin: a manager sees and edits only their networks' rows.

Permissions come from the network role, not Django's per-model permissions: a staff user who
is an owner or manager of a network administers that network's rows; a superuser sees all.
"""
from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model

from network.models import Network
from network.tenancy import managed_networks

# Foreign keys whose choices are narrowed to the manager's networks, by model label.
SCOPED_RELATIONS = {
    "network.network": "pk__in",
    "sites.site": "network__in",
    "targets.target": "network__in",
    "targets.campaign": "network__in",
}


class NetworkScopedAdmin(admin.ModelAdmin):
    """Base admin for a model that belongs to a network through ``network_path``."""

    network_path = "network"
    list_per_page = 50

    def _networks(self, request):
        return managed_networks(request.user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.network_path}__in": self._networks(request)}).distinct()

    def _network_id_of(self, obj) -> int | None:
        value = obj
        for part in self.network_path.split("__"):
            value = getattr(value, part, None)
            if value is None:
                return None
        return value.pk if isinstance(value, Network) else value

    def _allowed(self, request, obj=None) -> bool:
        user = request.user
        if not (user.is_active and user.is_staff):
            return False
        if user.is_superuser:
            return True
        networks = self._networks(request)
        if obj is None:
            return networks.exists()
        return networks.filter(pk=self._network_id_of(obj)).exists()

    def has_module_permission(self, request) -> bool:
        return self._allowed(request)

    def has_view_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_change_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def has_add_permission(self, request) -> bool:
        return self._allowed(request)

    def has_delete_permission(self, request, obj=None) -> bool:
        return self._allowed(request, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return narrow_choices(field, db_field, request, self._networks(request))


def narrow_choices(field, db_field, request, networks):
    """Limit a foreign-key choice list to rows of ``networks`` (people: their members).

    Without it a manager's drop-downs would list other networks' sites, targets and
    usernames. A person not yet in any of the manager's networks is added by a superuser.
    """
    if field is None or request.user.is_superuser:
        return field
    label = db_field.related_model._meta.label_lower
    if label in SCOPED_RELATIONS:
        field.queryset = field.queryset.filter(**{SCOPED_RELATIONS[label]: networks})
    elif db_field.related_model is get_user_model():
        field.queryset = field.queryset.filter(memberships__network__in=networks).distinct()
    return field


class ScopedInline:
    """Mixin for inlines: the same foreign-key narrowing as `NetworkScopedAdmin`."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        return narrow_choices(field, db_field, request, managed_networks(request.user))

    def has_add_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    def has_change_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff
