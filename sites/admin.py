from django.contrib import admin, messages
from django.utils import timezone

from network.admin_scoping import NetworkScopedAdmin, ScopedInline
from sites.models import Site, SiteKey
from sites.services import forget_site_keys, issue_site_key


class SiteKeyInline(ScopedInline, admin.TabularInline):
    model = SiteKey
    extra = 0
    fields = ["label", "lookup", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["lookup", "created_at", "last_used_at"]
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # a key is issued by the "Issue a new key" action, which shows it once


@admin.register(Site)
class SiteAdmin(NetworkScopedAdmin):
    list_display = ["name", "network", "owner", "automation", "aperture_mm", "online", "status",
                    "weather_status", "last_seen", "is_active"]
    list_filter = ["network", "automation", "mount_type", "status", "weather_status", "is_active"]
    search_fields = ["name", "owner__username", "camera_model"]
    list_select_related = ["network", "owner"]
    readonly_fields = ["status", "weather_status", "weather", "weather_reported_at", "last_seen", "created_at"]
    inlines = [SiteKeyInline]
    # The scheduler adds its actions (recompute now, tonight's tasking) in scheduling/admin.py.
    actions = ["issue_key", "activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["network", "owner", "name", "is_active"]}),
        ("Place", {"fields": ["latitude", "longitude", "elevation_m", "timezone"]}),
        ("Equipment", {"fields": ["aperture_mm", "focal_length_mm", "pixel_size_um", "camera_model", "filters",
                                  "fov_arcmin", "limiting_mag", "mount_type", "automation"]}),
        ("Limits", {"fields": ["horizon", "min_altitude_deg", "ha_limit_east_h", "ha_limit_west_h",
                               "availability", "reliability"]}),
        ("Reported by the agent", {"fields": ["status", "weather_status", "weather", "weather_reported_at",
                                              "last_seen", "created_at"]}),
    ]

    @admin.display(boolean=True, description="online")
    def online(self, site: Site) -> bool:
        return site.is_online

    @admin.action(description="Issue a new API key for each selected site (shown once)")
    def issue_key(self, request, queryset):
        for site in queryset:
            issued = issue_site_key(site, label=f"admin {timezone.now():%Y-%m-%d}", created_by=request.user)
            self.message_user(request, f"{site}: new key {issued.plaintext} — copy it now, it is not shown again.",
                              messages.WARNING)

    @admin.action(description="Activate the selected sites")
    def activate(self, request, queryset):
        self.message_user(request, f"Activated {queryset.update(is_active=True)} site(s).")
        forget_site_keys(site_ids=list(queryset.values_list("pk", flat=True)))

    @admin.action(description="Deactivate the selected sites")
    def deactivate(self, request, queryset):
        self.message_user(request, f"Deactivated {queryset.update(is_active=False)} site(s).")
        forget_site_keys(site_ids=list(queryset.values_list("pk", flat=True)))


@admin.register(SiteKey)
class SiteKeyAdmin(NetworkScopedAdmin):
    list_display = ["lookup", "site", "network", "label", "created_at", "last_used_at", "revoked_at"]
    list_filter = ["network", "revoked_at"]
    search_fields = ["lookup", "label", "site__name"]
    list_select_related = ["site", "network"]
    readonly_fields = ["site", "lookup", "created_by", "created_at", "last_used_at"]
    fields = ["site", "label", "lookup", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False  # issued from the site page so the plaintext can be shown once

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request, queryset):
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        forget_site_keys(site_ids=list(queryset.values_list("site_id", flat=True).distinct()))
        self.message_user(request, f"Revoked {count} key(s).")
