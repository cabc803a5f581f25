from django.contrib import admin

from network.admin_scoping import NetworkScopedAdmin, ScopedInline
from network.models import Membership, Network, Role, UserToken
from network.tenancy import role_in


class MembershipInline(ScopedInline, admin.TabularInline):
    model = Membership
    extra = 0
    fields = ["user", "role", "joined_at"]
    readonly_fields = ["joined_at"]


@admin.register(Network)
class NetworkAdmin(NetworkScopedAdmin):
    network_path = "pk"
    list_display = ["name", "slug", "is_active", "member_count", "site_count", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "slug", "description"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]

    def get_queryset(self, request):
        queryset = super(NetworkScopedAdmin, self).get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=self._networks(request))

    def _network_id_of(self, obj):
        return obj.pk

    def has_add_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request, obj=None) -> bool:
        # Managers see their network; changing it and its members is for owners.
        if obj is None or request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return role_in(request.user, obj) == Role.OWNER

    @admin.display(description="members")
    def member_count(self, network: Network) -> int:
        return network.memberships.count()

    @admin.display(description="sites")
    def site_count(self, network: Network) -> int:
        return network.sites.count()


@admin.register(Membership)
class MembershipAdmin(NetworkScopedAdmin):
    list_display = ["user", "network", "role", "joined_at"]
    list_filter = ["role", "network"]
    search_fields = ["user__username", "user__email", "network__name"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is None or request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return role_in(request.user, obj.network_id) == Role.OWNER

    has_delete_permission = has_change_permission


@admin.register(UserToken)
class UserTokenAdmin(admin.ModelAdmin):
    """Personal API tokens; issue them with ``manage.py issue_user_token`` (shown once)."""

    list_display = ["user", "label", "lookup", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["revoked_at"]
    search_fields = ["user__username", "label", "lookup"]
    readonly_fields = ["user", "lookup", "created_at", "last_used_at"]
    actions = ["revoke"]

    def has_module_permission(self, request) -> bool:
        return request.user.is_superuser

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Revoke the selected tokens")
    def revoke(self, request, queryset):
        from django.utils import timezone

        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} token(s).")
