"""API v1 shapes for sites, heartbeats and keys."""
from __future__ import annotations

from rest_framework import serializers

from sites.models import Site, SiteKey, SiteStatus, Weather


class SiteSerializer(serializers.ModelSerializer):
    network = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    is_online = serializers.BooleanField(read_only=True)
    pixel_scale_arcsec = serializers.FloatField(read_only=True)

    class Meta:
        model = Site
        fields = [
            "id", "network", "name", "owner", "latitude", "longitude", "elevation_m", "timezone",
            "aperture_mm", "focal_length_mm", "pixel_size_um", "pixel_scale_arcsec", "camera_model", "filters",
            "fov_arcmin", "limiting_mag", "mount_type", "automation", "horizon", "min_altitude_deg",
            "ha_limit_east_h", "ha_limit_west_h", "availability", "status", "weather_status", "weather",
            "weather_reported_at", "reliability", "is_active", "is_online", "last_seen", "created_at",
        ]
        read_only_fields = ["status", "weather_status", "weather", "weather_reported_at", "reliability",
                            "last_seen", "created_at"]
        # Name uniqueness per network is checked by the view (the network is not a field here).
        validators = []

    def validate(self, attrs):
        east, west = attrs.get("ha_limit_east_h"), attrs.get("ha_limit_west_h")
        if east is not None and not -12 <= east <= 0:
            raise serializers.ValidationError({"ha_limit_east_h": "must be in [-12, 0] hours"})
        if west is not None and not 0 <= west <= 12:
            raise serializers.ValidationError({"ha_limit_west_h": "must be in [0, 12] hours"})
        return attrs


class SiteCreateSerializer(SiteSerializer):
    network = serializers.SlugField(write_only=True, required=False,
                                    help_text="Slug of the network; optional if you belong to one.")

    class Meta(SiteSerializer.Meta):
        pass


class HeartbeatSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=SiteStatus.choices, required=False)
    weather_status = serializers.ChoiceField(choices=Weather.choices, required=False)
    weather = serializers.DictField(required=False, help_text="Free-form readings, e.g. {'cloud_cover': 0.1}.")


class SiteKeySerializer(serializers.ModelSerializer):
    is_active = serializers.BooleanField(read_only=True)

    class Meta:
        model = SiteKey
        fields = ["id", "label", "lookup", "created_at", "last_used_at", "revoked_at", "is_active"]
        read_only_fields = fields


class SiteKeyCreateSerializer(serializers.Serializer):
    label = serializers.CharField(max_length=80, required=False, allow_blank=True, default="")


class IssuedSiteKeySerializer(SiteKeySerializer):
    key = serializers.CharField(read_only=True, help_text="The key itself, shown this once only.")

    class Meta(SiteKeySerializer.Meta):
        fields = [*SiteKeySerializer.Meta.fields, "key"]
        read_only_fields = fields
