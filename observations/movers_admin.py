"""Admin for mover searches and their candidates (read-only, scoped to the manager's networks)."""
from __future__ import annotations

from django.contrib import admin

from network.admin_scoping import NetworkScopedAdmin
from observations.mover_models import MoverCandidate, MoverSearch


@admin.register(MoverSearch)
class MoverSearchAdmin(NetworkScopedAdmin):
    list_display = ["id", "target", "night", "network", "searched_at", "error"]
    list_filter = ["network"]
    search_fields = ["target__name", "error"]
    list_select_related = ["target", "network"]
    date_hierarchy = "night"
    readonly_fields = ["network", "target", "night", "frames", "report_key", "json_key", "parameters", "error",
                       "searched_at"]

    def has_add_permission(self, request) -> bool:
        return False  # made by the mover search task


@admin.register(MoverCandidate)
class MoverCandidateAdmin(NetworkScopedAdmin):
    list_display = ["id", "number", "kind", "search", "rate_px_per_frame", "angle_deg", "snr", "first_at"]
    list_filter = ["kind", "network"]
    search_fields = ["search__target__name", "number"]
    list_select_related = ["search__target"]
    readonly_fields = ["network", "search", "number", "kind", "rate_px_per_frame", "angle_deg", "snr", "positions",
                       "first_at", "last_at", "frames", "found_by"]

    def has_add_permission(self, request) -> bool:
        return False
