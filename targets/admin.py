from django.contrib import admin

from network.admin_scoping import NetworkScopedAdmin, ScopedInline
from targets.models import Alert, AlertFeed, AlertRule, Campaign, CampaignTarget, Target, TargetAlias


class AliasInline(ScopedInline, admin.TabularInline):
    model = TargetAlias
    extra = 0
    fields = ["name"]


class TargetCampaignInline(ScopedInline, admin.TabularInline):
    model = CampaignTarget
    extra = 0
    fields = ["campaign", "priority_boost"]
    verbose_name = "campaign"


@admin.register(Target)
class TargetAdmin(NetworkScopedAdmin):
    list_display = ["name", "network", "target_type", "ra_deg", "dec_deg", "magnitude", "priority",
                    "total_observations", "unique_sites", "observations_last_7d", "last_observed_at", "is_active"]
    list_filter = ["network", "target_type", "is_active"]
    search_fields = ["name", "aliases__name"]
    list_select_related = ["network"]
    readonly_fields = ["total_observations", "unique_sites", "observations_last_7d", "last_observed_at",
                       "created_at", "updated_at"]
    inlines = [AliasInline, TargetCampaignInline]
    actions = ["activate", "deactivate"]
    fieldsets = [
        (None, {"fields": ["network", "name", "target_type", "is_active", "expires_at"]}),
        ("Position (J2000, degrees)", {"fields": ["ra_deg", "dec_deg", "magnitude"]}),
        ("Scheduling", {"fields": ["priority", "cadence_hours", "min_observations", "required_filters",
                                   "exposure_sec", "total_hours", "time_windows"]}),
        ("Coverage", {"fields": ["total_observations", "unique_sites", "observations_last_7d",
                                 "last_observed_at"]}),
        ("More", {"fields": ["metadata", "created_at", "updated_at"], "classes": ["collapse"]}),
    ]

    @admin.action(description="Activate the selected targets")
    def activate(self, request, queryset):
        self.message_user(request, f"Activated {queryset.update(is_active=True)} target(s).")

    @admin.action(description="Deactivate the selected targets")
    def deactivate(self, request, queryset):
        self.message_user(request, f"Deactivated {queryset.update(is_active=False)} target(s).")


class CampaignTargetInline(ScopedInline, admin.TabularInline):
    model = CampaignTarget
    extra = 0
    fields = ["target", "priority_boost", "added_at"]
    readonly_fields = ["added_at"]
    autocomplete_fields = ["target"]


@admin.register(Campaign)
class CampaignAdmin(NetworkScopedAdmin):
    list_display = ["name", "network", "coverage_policy", "coverage_sites", "starts_at", "ends_at",
                    "priority_boost", "target_count", "is_active"]
    list_filter = ["network", "coverage_policy", "is_active"]
    search_fields = ["name", "description"]
    list_select_related = ["network"]
    inlines = [CampaignTargetInline]
    actions = ["activate", "deactivate"]

    @admin.display(description="targets")
    def target_count(self, campaign: Campaign) -> int:
        return campaign.memberships.count()

    @admin.action(description="Activate the selected campaigns")
    def activate(self, request, queryset):
        self.message_user(request, f"Activated {queryset.update(is_active=True)} campaign(s).")

    @admin.action(description="Deactivate the selected campaigns")
    def deactivate(self, request, queryset):
        self.message_user(request, f"Deactivated {queryset.update(is_active=False)} campaign(s).")


@admin.register(Alert)
class AlertAdmin(NetworkScopedAdmin):
    list_display = ["external_id", "source", "network", "alert_type", "status", "rule", "priority", "ra_deg",
                    "dec_deg", "error_radius_arcsec", "target", "received_at"]
    list_filter = ["network", "source", "alert_type", "status"]
    search_fields = ["external_id", "target__name"]
    list_select_related = ["network", "target"]
    date_hierarchy = "received_at"
    autocomplete_fields = ["target"]


@admin.register(AlertRule)
class AlertRuleAdmin(NetworkScopedAdmin):
    list_display = ["name", "network", "position", "is_active", "sources", "alert_types", "min_sites", "within_hours",
                    "target_priority", "time_critical_hours"]
    list_filter = ["network", "is_active"]
    search_fields = ["name"]
    list_select_related = ["network"]
    fieldsets = [
        (None, {"fields": ["network", "name", "is_active", "position"]}),
        ("What the alert must be", {"fields": ["sources", "alert_types", "classifications", "min_classification_score",
                                               "min_real_bogus", "mag_min", "mag_max", "max_error_radius_deg"]}),
        ("Where it must be", {"fields": ["dec_min", "dec_max", "min_abs_galactic_latitude", "min_sites",
                                         "within_hours"]}),
        ("The new target", {"fields": ["target_priority", "target_cadence_hours", "time_critical_hours",
                                       "time_critical_boost", "campaign", "campaign_name", "tile_large_regions",
                                       "max_tiles"]}),
    ]


@admin.register(AlertFeed)
class AlertFeedAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "source", "status", "last_message_at", "lag", "messages", "alerts", "skipped",
                    "restarts"]
    readonly_fields = ["messages", "alerts", "skipped", "restarts", "lag", "last_message_at", "last_error",
                       "updated_at"]
