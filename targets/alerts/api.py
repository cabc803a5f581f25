"""API v1: /api/v1/alerts (list with status and filters), /api/v1/alert-rules, /api/v1/alert-feeds."""
from __future__ import annotations

import django_filters
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from network.api import NotForAgents, can_manage, network_for_write, scoped_networks
from network.models import MANAGING_ROLES
from targets.alerts.models import AlertFeed, AlertRule
from targets.api import CONE_PARAMETERS, AlertViewSet, apply_cone
from targets.models import Alert, AlertSource, AlertStatus, Campaign
from targets.serializers import AlertSerializer


class AlertFilter(django_filters.FilterSet):
    source = django_filters.ChoiceFilter(choices=AlertSource.choices)
    status = django_filters.ChoiceFilter(choices=AlertStatus.choices)
    since = django_filters.IsoDateTimeFilter(field_name="received_at", lookup_expr="gte",
                                             help_text="Received at or after (UTC ISO-8601)")
    alert_type = django_filters.CharFilter()
    event_id = django_filters.CharFilter()

    class Meta:
        model = Alert
        fields = ["source", "status", "since", "alert_type", "event_id"]


class AlertStatusSerializer(AlertSerializer):
    """An alert with what the rules made of it."""

    rule = serializers.SlugRelatedField(slug_field="name", read_only=True)
    target_name = serializers.CharField(source="target.name", read_only=True, default=None)

    class Meta(AlertSerializer.Meta):
        fields = [*AlertSerializer.Meta.fields, "event_id", "event_time", "magnitude", "status", "rule",
                  "rule_report", "target_name"]
        read_only_fields = [*AlertSerializer.Meta.read_only_fields, "event_id", "event_time", "magnitude", "status",
                            "rule", "rule_report", "target_name"]


class AlertStatusViewSet(AlertViewSet):
    """Alerts with their status (new, matched, ignored, retracted); filters source, since, status,
    network (``?network=slug``) and a cone (ra, dec, radius_deg). POST stays for custom ingesters."""

    filterset_class = AlertFilter
    filterset_fields = None

    def get_queryset(self):
        return super().get_queryset().select_related("target", "rule")

    def get_serializer_class(self):
        return AlertStatusSerializer if self.action in ("list", "retrieve") else AlertSerializer

    @extend_schema(parameters=CONE_PARAMETERS, responses=AlertStatusSerializer(many=True))
    def list(self, request, *args, **kwargs):
        queryset, _ = apply_cone(request, self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        return self.get_paginated_response(AlertStatusSerializer(page, many=True).data)


class AlertRuleSerializer(serializers.ModelSerializer):
    network = serializers.SlugField(required=False, help_text="Slug of the network; optional if you manage one.")
    campaign = serializers.PrimaryKeyRelatedField(queryset=Campaign.objects.all(), required=False, allow_null=True)

    class Meta:
        model = AlertRule
        exclude = ["created_at"]
        validators = []  # (network, name) is checked with the network below

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["network"] = instance.network.slug
        return data

    def validate(self, attrs):
        merged = {f: attrs.get(f, getattr(self.instance, f, None)) for f in ("mag_min", "mag_max", "dec_min", "dec_max")}
        if None not in (merged["mag_min"], merged["mag_max"]) and merged["mag_min"] > merged["mag_max"]:
            raise serializers.ValidationError({"mag_max": "mag_max must be fainter (larger) than mag_min"})
        if None not in (merged["dec_min"], merged["dec_max"]) and merged["dec_min"] > merged["dec_max"]:
            raise serializers.ValidationError({"dec_max": "dec_max must be north of dec_min"})
        return attrs


class AlertRuleViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                       mixins.UpdateModelMixin, mixins.DestroyModelMixin, viewsets.GenericViewSet):
    """Each network's alert rules; managers create and edit them."""

    permission_classes = [NotForAgents]
    serializer_class = AlertRuleSerializer
    filterset_fields = ["is_active"]

    def get_queryset(self):
        return AlertRule.objects.filter(network__in=scoped_networks(self.request)).select_related("network")

    def _check(self, serializer, network) -> None:
        campaign = serializer.validated_data.get("campaign")
        if campaign is not None and campaign.network_id != network.pk:
            raise serializers.ValidationError({"campaign": ["the campaign belongs to another network"]})
        name = serializer.validated_data.get("name")
        clash = AlertRule.objects.filter(network=network, name=name)
        if serializer.instance is not None:
            clash = clash.exclude(pk=serializer.instance.pk)
        if name and clash.exists():
            raise serializers.ValidationError({"name": [f"the network already has a rule called {name!r}"]})

    def perform_create(self, serializer) -> None:
        network = network_for_write(self.request, serializer.validated_data.pop("network", None), MANAGING_ROLES)
        self._check(serializer, network)
        serializer.save(network=network)

    def perform_update(self, serializer) -> None:
        if not can_manage(self.request, serializer.instance.network_id):
            raise PermissionDenied("only the network's managers may edit its alert rules")
        serializer.validated_data.pop("network", None)
        self._check(serializer, serializer.instance.network)
        serializer.save()

    def perform_destroy(self, instance) -> None:
        if not can_manage(self.request, instance.network_id):
            raise PermissionDenied("only the network's managers may delete its alert rules")
        instance.delete()


class AlertFeedStatusSerializer(serializers.ModelSerializer):
    """A feed's own facts (state, last message, lag): what a network's managers see."""

    health = serializers.CharField(source="status_line", read_only=True)

    class Meta:
        model = AlertFeed
        fields = ["name", "kind", "source", "status", "last_message_at", "lag", "updated_at", "health"]
        read_only_fields = fields


class AlertFeedSerializer(AlertFeedStatusSerializer):
    """Everything, counts and last error included, which mix every network's traffic: staff only."""

    health = serializers.CharField(source="health_line", read_only=True)

    class Meta(AlertFeedStatusSerializer.Meta):
        fields = [*AlertFeedStatusSerializer.Meta.fields[:-2], "messages", "alerts", "skipped", "restarts",
                  "last_error", "updated_at", "health"]
        read_only_fields = fields


class AlertFeedViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    """Health of the alert streams and polls. Feeds serve every network, so their counts and last
    error are for staff; a network's managers see each feed's state, last message and lag; other
    members are refused (403)."""

    permission_classes = [NotForAgents]
    serializer_class = AlertFeedSerializer
    queryset = AlertFeed.objects.all()
    pagination_class = None

    @extend_schema(responses=AlertFeedSerializer(many=True),
                   description="Staff: every field. Managers: name, kind, source, status, last_message_at, lag, "
                               "updated_at, health (the status line). Others: 403.")
    def list(self, request, *args, **kwargs):
        if request.user.is_staff:
            return Response(AlertFeedSerializer(self.get_queryset(), many=True).data)
        if not scoped_networks(request, MANAGING_ROLES).exists():
            raise PermissionDenied("alert feeds' health is for network managers and staff")
        return Response(AlertFeedStatusSerializer(self.get_queryset(), many=True).data)
