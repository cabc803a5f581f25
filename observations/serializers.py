"""API v1 shapes for observations and light curves."""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import serializers

from observations.models import Observation, PositionSource

MAGNITUDE = {"required": False, "allow_null": True, "min_value": -30, "max_value": 40}
UNCERTAINTY = {"required": False, "allow_null": True, "min_value": 0}


class ComparisonStarSerializer(serializers.Serializer):
    """One comparison or check star, with the keys the pipeline writes and the exporters read.

    Magnitudes are in mag, positions in degrees. ``magnitude`` is the agent's name for the
    catalogue magnitude. Unknown keys are refused rather than dropped, so nothing sent is lost.
    """

    name = serializers.CharField(max_length=20)
    role = serializers.ChoiceField(choices=["comparison", "check"], required=False)
    used = serializers.BooleanField(required=False)
    catalog = serializers.CharField(required=False, allow_blank=True, max_length=64)
    ra_deg = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=360)
    dec_deg = serializers.FloatField(required=False, allow_null=True, min_value=-90, max_value=90)
    catalog_mag = serializers.FloatField(**MAGNITUDE)
    magnitude = serializers.FloatField(**MAGNITUDE)
    instrumental_mag = serializers.FloatField(**MAGNITUDE)
    measured_mag = serializers.FloatField(**MAGNITUDE)
    catalog_err = serializers.FloatField(**UNCERTAINTY)
    instrumental_err = serializers.FloatField(**UNCERTAINTY)
    error = serializers.FloatField(**UNCERTAINTY)
    residual = serializers.FloatField(required=False, allow_null=True)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                known = ", ".join(self.fields)
                raise serializers.ValidationError({key: f"unknown comparison-star key; known keys: {known}"
                                                   for key in unknown})
        return super().to_internal_value(data)


class PhotometrySerializer(serializers.Serializer):
    magnitude = serializers.FloatField(**MAGNITUDE)
    error = serializers.FloatField(**UNCERTAINTY)
    comparison_stars = serializers.ListField(child=ComparisonStarSerializer(), required=False)
    method = serializers.CharField(required=False, allow_blank=True, max_length=32)


class AstrometrySerializer(serializers.Serializer):
    ra_deg = serializers.FloatField()
    dec_deg = serializers.FloatField(min_value=-90, max_value=90)
    error_arcsec = serializers.FloatField(required=False, allow_null=True, min_value=0)

    def validate_ra_deg(self, value: float) -> float:
        if not 0 <= value < 360:
            raise serializers.ValidationError("ra_deg must be in [0, 360) degrees")
        return value


# The flat photometry of the seed design's minimal client, beside the nested ``photometry``.
FLAT_PHOTOMETRY = {"magnitude": "magnitude", "mag_error": "error", "comparison_stars": "comparison_stars"}


class ObservationInputSerializer(serializers.Serializer):
    """One uploaded observation. ``site_id`` may be left out by an agent (its key names the site).

    Photometry comes nested (``photometry: {magnitude, error, comparison_stars, method}``) or
    flat, as the seed design's minimal client sends it (``magnitude``, ``mag_error`` and
    ``comparison_stars`` as a list of star names or objects). Without ``observation_id`` the
    record gets one derived from (site, target, observed_at, filter), so a retry of the same
    record is still recognised. A key the API does not know is refused, never dropped.
    """

    observation_id = serializers.UUIDField(
        required=False, help_text="Chosen by the client; a retry reuses it. Left out: derived from site, target, "
                                  "observed_at and filter.")
    target_id = serializers.IntegerField()
    site_id = serializers.IntegerField(required=False)
    observed_at = serializers.DateTimeField(help_text="Mid-exposure, UTC (ISO-8601).")
    exposure_sec = serializers.FloatField()
    filter = serializers.CharField(max_length=32)
    airmass = serializers.FloatField(required=False, allow_null=True)
    seeing_arcsec = serializers.FloatField(required=False, allow_null=True, min_value=0)
    photometry = PhotometrySerializer(required=False)
    astrometry = AstrometrySerializer(required=False, allow_null=True)
    quality_flags = serializers.ListField(child=serializers.CharField(max_length=40), required=False)
    fits_header = serializers.DictField(required=False)
    image_ref = serializers.CharField(required=False, allow_blank=True, max_length=500)
    magnitude = serializers.FloatField(**MAGNITUDE, write_only=True, help_text="Flat form of photometry.magnitude")
    mag_error = serializers.FloatField(**UNCERTAINTY, write_only=True, help_text="Flat form of photometry.error")
    comparison_stars = serializers.ListField(
        required=False, write_only=True, help_text="Flat form of photometry.comparison_stars: star names "
                                                   "(strings) or comparison-star objects")

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError({key: [f"unknown field; known fields: {', '.join(self.fields)}"]
                                                   for key in unknown})
        attrs = super().to_internal_value(data)
        flat = {FLAT_PHOTOMETRY[key]: attrs.pop(key) for key in list(FLAT_PHOTOMETRY) if key in attrs}
        if flat:
            if "photometry" in attrs:
                raise serializers.ValidationError(
                    {"photometry": ["give the photometry nested or flat (magnitude, mag_error, comparison_stars), "
                                    "not both"]})
            stars = [{"name": s} if isinstance(s, str) else s for s in flat.get("comparison_stars", [])]
            nested = PhotometrySerializer(data={**flat, "comparison_stars": stars})
            if not nested.is_valid():
                errors = nested.errors
                raise serializers.ValidationError({flat_name: errors[name] for flat_name, name in
                                                   FLAT_PHOTOMETRY.items() if name in errors})
            attrs["photometry"] = nested.validated_data
        return attrs

    def validate_exposure_sec(self, value: float) -> float:
        if value <= 0:
            raise serializers.ValidationError("exposure_sec must be greater than 0 seconds")
        return value

    def validate_airmass(self, value: float | None) -> float | None:
        if value is not None and value < 1:
            raise serializers.ValidationError("airmass must be at least 1 (1 = zenith)")
        return value

    def validate_observed_at(self, value):
        skew = timedelta(seconds=settings.DATAS_CLOCK_SKEW_SECONDS)
        if value > timezone.now() + skew:
            raise serializers.ValidationError("observed_at is in the future; send the UTC mid-exposure time")
        return value

    def validate(self, attrs):
        # Site, target and filter checks need the caller's scope (see observations.services).
        resolve = self.context["resolve"]
        return resolve(attrs)


class ObservationSerializer(serializers.ModelSerializer):
    network = serializers.CharField(source="network.slug", read_only=True)
    target_id = serializers.IntegerField(read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True)
    site_id = serializers.IntegerField(read_only=True)
    photometry = serializers.SerializerMethodField()
    position = serializers.SerializerMethodField()

    class Meta:
        model = Observation
        fields = ["observation_id", "network", "target_id", "target_name", "site_id", "observed_at",
                  "exposure_sec", "filter", "airmass", "seeing_arcsec", "photometry", "position",
                  "quality_flags", "fits_header", "image_ref", "created_at"]
        read_only_fields = fields

    def get_photometry(self, obs: Observation) -> dict:
        return {"magnitude": obs.magnitude, "error": obs.magnitude_error,
                "comparison_stars": obs.comparison_stars, "method": obs.photometry_method}

    def get_position(self, obs: Observation) -> dict:
        return {"ra_deg": obs.ra_deg, "dec_deg": obs.dec_deg, "source": obs.position_source,
                "error_arcsec": obs.astrometry_error_arcsec,
                "measured": obs.position_source == PositionSource.ASTROMETRY}


class ObservationSearchResultSerializer(ObservationSerializer):
    separation_deg = serializers.FloatField(read_only=True)

    class Meta(ObservationSerializer.Meta):
        fields = [*ObservationSerializer.Meta.fields, "separation_deg"]
        read_only_fields = fields


class BatchResultSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="How many records were new")
    existing = serializers.IntegerField(help_text="How many were already stored (retries)")
    results = ObservationSerializer(many=True)


class LightCurvePointSerializer(serializers.Serializer):
    t = serializers.DateTimeField(help_text="UTC")
    mjd = serializers.FloatField()
    magnitude = serializers.FloatField()
    error = serializers.FloatField(allow_null=True)
    n = serializers.IntegerField(help_text="Observations averaged into this point")
    site_id = serializers.IntegerField(allow_null=True)
    airmass = serializers.FloatField(allow_null=True, help_text="Mean airmass of the point")
