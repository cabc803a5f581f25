"""API v1 shapes for targets, campaigns and alerts."""
from __future__ import annotations

from rest_framework import serializers

from network.filters import MAX_ID
from targets.models import Alert, AlertSource, Campaign, Target
from targets.sky import InvalidSkyPosition, check_position


def model_validators(field: str) -> list:
    """The Target field's own validators: a nested field (not a ModelSerializer field) gets
    the model's bounds from the model, so they are written in one place."""
    return list(Target._meta.get_field(field).validators)


class RequirementsSerializer(serializers.Serializer):
    filters = serializers.ListField(child=serializers.CharField(), source="required_filters", required=False)
    exposure_sec = serializers.FloatField(required=False, allow_null=True, validators=model_validators("exposure_sec"))
    total_hours = serializers.FloatField(required=False, allow_null=True, validators=model_validators("total_hours"))
    time_windows = serializers.JSONField(required=False, validators=model_validators("time_windows"),
                                         help_text='[{"start": ISO, "end": ISO, "priority_boost": 1.0}] (UTC)')


class CoverageSerializer(serializers.Serializer):
    total_observations = serializers.IntegerField(read_only=True)
    unique_sites = serializers.IntegerField(read_only=True)
    observations_last_7d = serializers.IntegerField(read_only=True)
    last_observed_at = serializers.DateTimeField(read_only=True, allow_null=True)


class TargetSerializer(serializers.ModelSerializer):
    network = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    aliases = serializers.SerializerMethodField()
    requirements = RequirementsSerializer(source="*", read_only=True)
    coverage = CoverageSerializer(source="*", read_only=True)

    class Meta:
        model = Target
        fields = ["id", "network", "name", "aliases", "ra_deg", "dec_deg", "target_type", "magnitude", "priority",
                  "cadence_hours", "min_observations", "requirements", "is_active", "expires_at", "metadata",
                  "coverage", "created_at"]
        read_only_fields = fields

    def get_aliases(self, target: Target) -> list[str]:
        return [alias.name for alias in target.aliases.all()]


class TargetSearchResultSerializer(TargetSerializer):
    separation_deg = serializers.FloatField(read_only=True, help_text="Distance from the cone centre.")

    class Meta(TargetSerializer.Meta):
        fields = [*TargetSerializer.Meta.fields, "separation_deg"]
        read_only_fields = fields


class TargetWriteSerializer(serializers.ModelSerializer):
    network = serializers.SlugField(required=False, help_text="Slug of the network; optional if you manage one.")
    aliases = serializers.ListField(child=serializers.CharField(max_length=120), required=False)
    requirements = RequirementsSerializer(source="*", required=False)

    class Meta:
        model = Target
        fields = ["network", "name", "aliases", "ra_deg", "dec_deg", "target_type", "magnitude", "priority",
                  "cadence_hours", "min_observations", "requirements", "is_active", "expires_at", "metadata"]
        validators = []  # names are unique per network; the service checks them with the network

    def validate_ra_deg(self, value: float) -> float:
        if not 0 <= value < 360:
            raise serializers.ValidationError("ra_deg must be in [0, 360) degrees")
        return value


class RankedTargetSerializer(TargetSerializer):
    rank = serializers.IntegerField(read_only=True)
    score = serializers.FloatField(read_only=True)
    reason = serializers.CharField(read_only=True)
    plan = serializers.JSONField(read_only=True, help_text=(
        "The scheduler's entry: filter_plan [{filter (the wheel's name), exposure_sec, count}], window_start, "
        "window_end, best_time (UTC), altitude_deg, best_altitude_deg, airmass, moon_separation_deg, urgent, "
        "terms (the factors whose product is the score)."))

    target_id = serializers.IntegerField(read_only=True, help_text="The target's id (as ``id``)")
    filter = serializers.CharField(read_only=True, allow_null=True,
                                   help_text="The next exposure's filter: the plan's first step")
    exposure_sec = serializers.FloatField(read_only=True, allow_null=True,
                                          help_text="The next exposure's length: the plan's first step")

    class Meta(TargetSerializer.Meta):
        fields = ["rank", "score", "reason", "plan", *TargetSerializer.Meta.fields, "target_id", "filter",
                  "exposure_sec"]
        read_only_fields = fields


class RankedListSerializer(serializers.Serializer):
    """A site's ranked list, as ``GET /api/v1/targets`` serves it to agents (scheduling.poll)."""

    site_id = serializers.IntegerField()
    network = serializers.CharField()
    generated_at = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    last_changed = serializers.DateTimeField(allow_null=True)
    stale = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True, help_text="Why the list is empty ('' when it is not)")
    weather = serializers.CharField(help_text="The weather the list was planned for ('unknown: ...' when the site "
                                              "never reported)")
    targets = RankedTargetSerializer(many=True)


class TargetPageSerializer(serializers.Serializer):
    """A page of the people's target list."""

    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = TargetSearchResultSerializer(many=True)


class ListStateSerializer(serializers.Serializer):
    """The cheap check agents poll before pulling their list."""

    site_id = serializers.IntegerField()
    last_changed = serializers.DateTimeField(allow_null=True)
    generated_at = serializers.DateTimeField(allow_null=True)
    valid_until = serializers.DateTimeField(allow_null=True)
    etag = serializers.CharField()
    stale = serializers.BooleanField()


class ConeQuerySerializer(serializers.Serializer):
    """``ra``, ``dec`` and ``radius_deg`` query parameters: all three or none."""

    ra = serializers.FloatField(required=False, min_value=0, max_value=360)
    dec = serializers.FloatField(required=False, min_value=-90, max_value=90)
    radius_deg = serializers.FloatField(required=False, min_value=1e-6, max_value=180)

    def validate(self, attrs):
        given = {k for k in ("ra", "dec", "radius_deg") if k in attrs}
        if given and given != {"ra", "dec", "radius_deg"}:
            missing = sorted({"ra", "dec", "radius_deg"} - given)
            raise serializers.ValidationError({name: ["needed for a cone search (give ra, dec and radius_deg)"]
                                               for name in missing})
        if given:
            try:
                check_position(attrs["ra"], attrs["dec"], attrs["radius_deg"])
            except InvalidSkyPosition as exc:
                raise serializers.ValidationError({"radius_deg": [str(exc)]}) from exc
        return attrs


def id_field(**kwargs) -> serializers.IntegerField:
    """A row id in a query string: a whole number the database can hold, else a 400."""
    return serializers.IntegerField(min_value=1, max_value=MAX_ID, **kwargs)


class SiteQuerySerializer(serializers.Serializer):
    site_id = id_field(required=False, help_text="The site (agents: their own)")


class RankingQuerySerializer(SiteQuerySerializer):
    count = serializers.IntegerField(required=False, min_value=1, max_value=500, default=20)
    priority_min = serializers.FloatField(required=False)
    campaign = id_field(required=False, help_text="Campaign id")


class CampaignSerializer(serializers.ModelSerializer):
    network = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    target_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Campaign
        fields = ["id", "network", "name", "description", "starts_at", "ends_at", "priority_boost", "is_active",
                  "coverage_policy", "coverage_sites", "target_count", "created_at"]
        read_only_fields = fields


class TargetProgressSerializer(serializers.Serializer):
    target_id = serializers.IntegerField()
    name = serializers.CharField()
    observations = serializers.IntegerField()
    sites = serializers.IntegerField()
    observations_needed = serializers.IntegerField()
    sites_needed = serializers.IntegerField()
    fraction = serializers.FloatField()


class CampaignProgressSerializer(serializers.Serializer):
    targets_total = serializers.IntegerField()
    targets_complete = serializers.IntegerField()
    observations = serializers.IntegerField()
    fraction = serializers.FloatField(help_text="0..1, mean over targets")


class CampaignDetailSerializer(CampaignSerializer):
    progress = CampaignProgressSerializer(read_only=True)
    targets = TargetProgressSerializer(many=True, read_only=True, source="progress.targets")

    class Meta(CampaignSerializer.Meta):
        fields = [*CampaignSerializer.Meta.fields, "progress", "targets"]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    network = serializers.SlugField(required=False, help_text="Slug of the network; optional if you manage one.")
    source = serializers.ChoiceField(choices=AlertSource.choices)
    target_id = serializers.IntegerField(read_only=True, allow_null=True)
    create_target = serializers.BooleanField(
        write_only=True, default=False,
        help_text="Create a transient target when no target lies within the error radius.")

    class Meta:
        model = Alert
        fields = ["id", "network", "source", "external_id", "ra_deg", "dec_deg", "error_radius_arcsec",
                  "alert_type", "priority", "payload", "received_at", "target_id", "create_target"]
        read_only_fields = ["id", "target_id"]
        validators = []  # (network, source, external_id) is the idempotency key, handled by the service

    def validate_ra_deg(self, value: float) -> float:
        if not 0 <= value < 360:
            raise serializers.ValidationError("ra_deg must be in [0, 360) degrees")
        return value

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["network"] = instance.network.slug
        return data
