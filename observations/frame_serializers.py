"""API v1 shapes for frames, frame uploads and pipeline status."""
from __future__ import annotations

from django.urls import reverse
from rest_framework import serializers

from observations.frames import Frame, FrameUpload
from observations.states import progress


class FrameSerializer(serializers.ModelSerializer):
    network = serializers.CharField(source="network.slug", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True, default=None)
    observation_id = serializers.UUIDField(source="observation.observation_id", read_only=True, default=None)
    wcs = serializers.SerializerMethodField()
    quality = serializers.SerializerMethodField()
    pipeline = serializers.SerializerMethodField()
    links = serializers.SerializerMethodField()

    class Meta:
        model = Frame
        fields = ["id", "network", "site_id", "target_id", "target_name", "observation_id", "sha256", "size_bytes",
                  "original_name", "width", "height", "image_type", "is_master", "observed_at", "exposure_s",
                  "filter", "wcs", "quality", "pipeline", "links", "uploaded_at"]
        read_only_fields = fields

    def get_wcs(self, frame: Frame) -> dict | None:
        if frame.ra_deg is None:
            return None
        return {"ra_deg": frame.ra_deg, "dec_deg": frame.dec_deg, "footprint": frame.footprint,
                "pixel_scale_arcsec": frame.pixel_scale_arcsec, "rotation_deg": frame.rotation_deg,
                "flipped": frame.flipped, "source": frame.wcs_source, "reference_frame_id": frame.wcs_reference_id}

    def get_quality(self, frame: Frame) -> dict:
        return {"accepted": frame.accepted, "flags": frame.quality_flags, "fwhm_arcsec": frame.fwhm_arcsec,
                "reasons": frame.quality.get("reasons", []), "stars": frame.quality.get("stars"),
                "weight": frame.quality.get("weight")}

    def get_pipeline(self, frame: Frame) -> dict:
        return {"state": frame.state, "reason": frame.state_reason, "progress": round(progress(frame.state), 4),
                "active_stage": frame.active_stage or None, "active_since": frame.active_since,
                "attempts": frame.attempts, "seconds": frame.timings, "notes": frame.notes,
                "changed_at": frame.state_changed_at}

    def get_links(self, frame: Frame) -> dict:
        def link(name: str) -> str:
            return reverse(f"frame-{name}", kwargs={"pk": frame.pk})

        return {"file": link("file"), "preview": link("preview") if frame.preview_key else None,
                "thumbnail": link("thumbnail") if frame.thumbnail_key else None}


class FrameSearchResultSerializer(FrameSerializer):
    separation_deg = serializers.FloatField(read_only=True)

    class Meta(FrameSerializer.Meta):
        fields = [*FrameSerializer.Meta.fields, "separation_deg"]
        read_only_fields = fields


class FrameDetailSerializer(FrameSerializer):
    """One frame with everything the pipeline recorded."""

    class Meta(FrameSerializer.Meta):
        fields = [*FrameSerializer.Meta.fields, "header", "astrometry", "calibration", "photometry",
                  "wcs_header"]
        read_only_fields = fields


class FrameUploadInputSerializer(serializers.Serializer):
    """The form fields next to the file of ``POST /api/v1/frames``."""

    site_id = serializers.IntegerField(required=False, help_text="Agents may omit it (the key names the site).")
    target_id = serializers.IntegerField(required=False, allow_null=True)
    observation_id = serializers.UUIDField(required=False, allow_null=True,
                                           help_text="The observation this frame belongs to, if already posted.")
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", required=False,
                                    help_text="SHA-256 of the file as the client computed it (checked).",
                                    error_messages={"invalid": "sha256 must be 64 hexadecimal digits"})


class UploadGrantInputSerializer(FrameUploadInputSerializer):
    """A request for a pre-signed upload: what the file will be."""

    size_bytes = serializers.IntegerField(min_value=1)
    sha256 = serializers.RegexField(r"^[0-9a-fA-F]{64}$", help_text="SHA-256 of the file (hex).",
                                    error_messages={"invalid": "sha256 must be 64 hexadecimal digits"})
    filename = serializers.CharField(max_length=255, required=False, allow_blank=True)


class FrameUploadSerializer(serializers.ModelSerializer):
    class Meta:
        model = FrameUpload
        fields = ["upload_id", "site_id", "target_id", "sha256", "size_bytes", "original_name", "state", "reason",
                  "frame_id", "created_at", "expires_at"]
        read_only_fields = fields


class PipelineStatusSerializer(serializers.Serializer):
    target_id = serializers.IntegerField(allow_null=True)
    target_name = serializers.CharField(allow_null=True)
    frames = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    in_progress = serializers.IntegerField()
    progress = serializers.FloatField(help_text="Mean share of the chain completed, 0..1")
    states = serializers.DictField(child=serializers.IntegerField())
    last_change = serializers.DateTimeField(allow_null=True)
    recent_failures = serializers.ListField(child=serializers.DictField())
