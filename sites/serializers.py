"""API v1 shapes for sites, heartbeats and keys."""
from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from sites.models import Site, SiteKey, SiteStatus, Weather, validate_hour_angle_limits


class SiteSerializer(serializers.ModelSerializer):
    network = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    owner = serializers.CharField(source="owner.username", read_only=True)
    is_online = serializers.BooleanField(read_only=True)
    pixel_scale_arcsec = serializers.FloatField(read_only=True, allow_null=True)

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
        # The rules live on the model (Site.clean); a partial update is checked with the
        # values it leaves in place.
        def current(name):
            return attrs[name] if name in attrs else getattr(self.instance, name, None)

        try:
            validate_hour_angle_limits(current("ha_limit_east_h"), current("ha_limit_west_h"))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
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
