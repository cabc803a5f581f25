from django.contrib import admin

from network.admin_scoping import NetworkScopedAdmin
from observations.models import Observation


@admin.register(Observation)
class ObservationAdmin(NetworkScopedAdmin):
    list_display = ["observed_at", "target", "site", "network", "filter", "exposure_sec", "magnitude",
                    "magnitude_error", "airmass", "position_source"]
    list_filter = ["network", "filter", "position_source", "site"]
    search_fields = ["observation_id", "target__name", "site__name"]
    list_select_related = ["target", "site", "network"]
    date_hierarchy = "observed_at"
    raw_id_fields = ["target", "site"]
    readonly_fields = ["observation_id", "network", "submitted_by", "submitted_with_key", "created_at"]

    def has_add_permission(self, request) -> bool:
        return False  # observations arrive through the API, which validates and keeps coverage current


from observations import frames_admin  # noqa: E402,F401  (frames and pipeline status)
from observations.movers_admin import MoverCandidateAdmin, MoverSearchAdmin  # noqa: E402,F401
