"""Admin for frames and the pipeline's status per target (scoped to the manager's networks)."""
from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.utils.html import format_html

from network.admin_scoping import NetworkScopedAdmin
from observations.frames import Frame, TargetPipelineStatus
from observations.processing import rerun_frames
from observations.states import FrameState


@admin.register(Frame)
class FrameAdmin(NetworkScopedAdmin):
    list_display = ["id", "original_name", "network", "site", "target", "image_type", "filter", "observed_at",
                    "state", "active_stage", "accepted", "fwhm_arcsec", "flags", "thumbnail"]
    list_filter = ["state", "image_type", "accepted", "network", "filter", "wcs_source", "is_master"]
    search_fields = ["original_name", "sha256", "target__name", "site__name", "state_reason"]
    list_select_related = ["network", "site", "target"]
    date_hierarchy = "observed_at"
    raw_id_fields = ["site", "target", "observation", "wcs_reference"]
    actions = ["rerun_pipeline"]
    readonly_fields = [
        "network", "sha256", "size_bytes", "storage_key", "uploaded_by", "uploaded_with_key", "uploaded_at",
        "width", "height", "image_type", "is_master", "observed_at", "exposure_s", "filter", "header",
        "fits_header", "ra_deg", "dec_deg", "footprint", "pixel_scale_arcsec", "rotation_deg", "flipped",
        "wcs_source", "wcs_header", "astrometry", "reference_stars", "quality", "accepted", "quality_flags",
        "fwhm_arcsec", "calibration", "photometry", "preview_key", "thumbnail_key", "state", "state_reason",
        "state_changed_at", "active_stage", "active_since", "attempts", "timings", "notes",
    ]
    fieldsets = [
        (None, {"fields": ["network", "site", "target", "observation", "original_name", "image_type", "is_master",
                           "observed_at", "exposure_s", "filter"]}),
        ("Pipeline", {"fields": ["state", "state_reason", "state_changed_at", "active_stage", "active_since",
                                 "attempts", "timings", "notes"]}),
        ("Astrometry", {"fields": ["ra_deg", "dec_deg", "pixel_scale_arcsec", "rotation_deg", "flipped",
                                   "wcs_source", "wcs_reference", "footprint", "astrometry", "wcs_header"],
                        "classes": ["collapse"]}),
        ("Quality and products", {"fields": ["accepted", "quality_flags", "fwhm_arcsec", "quality", "calibration",
                                             "photometry", "preview_key", "thumbnail_key"], "classes": ["collapse"]}),
        ("File and header", {"fields": ["sha256", "size_bytes", "storage_key", "width", "height", "uploaded_by",
                                        "uploaded_with_key", "uploaded_at", "header", "fits_header",
                                        "reference_stars"], "classes": ["collapse"]}),
    ]

    def has_add_permission(self, request) -> bool:
        return False  # frames arrive through the upload API, which validates them

    @admin.display(description="flags")
    def flags(self, frame: Frame) -> str:
        return ", ".join(frame.quality_flags)

    @admin.display(description="preview")
    def thumbnail(self, frame: Frame) -> str:
        if not frame.thumbnail_key:
            return "-"
        return format_html('<img src="/api/v1/frames/{}/thumbnail" style="height:48px" alt="">', frame.pk)

    @admin.action(description="Run the pipeline again on the selected done or failed frames")
    def rerun_pipeline(self, request, queryset):
        count = rerun_frames(queryset.values_list("pk", flat=True))
        self.message_user(request, f"{count} frame(s) sent through the pipeline again", messages.SUCCESS)


@admin.register(TargetPipelineStatus)
class TargetPipelineStatusAdmin(NetworkScopedAdmin):
    list_display = ["name", "network", "frames_total", "frames_done", "frames_in_progress", "frames_failed",
                    "last_observed_at"]
    list_filter = ["network"]
    search_fields = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            n_frames=Count("frames"), n_done=Count("frames", filter=Q(frames__state=FrameState.DONE)),
            n_failed=Count("frames", filter=Q(frames__state=FrameState.FAILED))).filter(n_frames__gt=0)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="frames", ordering="n_frames")
    def frames_total(self, target) -> int:
        return target.n_frames

    @admin.display(description="done", ordering="n_done")
    def frames_done(self, target) -> int:
        return target.n_done

    @admin.display(description="in progress")
    def frames_in_progress(self, target) -> int:
        return target.n_frames - target.n_done - target.n_failed

    @admin.display(description="failed", ordering="n_failed")
    def frames_failed(self, target) -> str:
        if not target.n_failed:
            return "0"
        return format_html('<a href="../frame/?state=failed&target__id__exact={}">{}</a>', target.pk, target.n_failed)
