"""API v1: /api/v1/targets, /api/v1/campaigns, /api/v1/alerts (routes in targets/api_urls.py)."""
from __future__ import annotations

from django.db.models import Prefetch, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from network.api import (
    Authenticated,
    NotForAgents,
    can_manage,
    is_agent,
    network_for_write,
    scoped_networks,
)
from network.models import MANAGING_ROLES
from targets.filters import TargetFilter
from targets.models import Alert, Campaign, Target, TargetAlias, name_key
from targets.selectors import campaign_progress, campaigns_with_counts
from targets.serializers import (
    AlertSerializer,
    CampaignDetailSerializer,
    CampaignSerializer,
    ConeQuerySerializer,
    TargetSearchResultSerializer,
    TargetSerializer,
    TargetWriteSerializer,
)
from targets.services import NameTaken, TargetNameInUse, create_target, receive_alert, update_target
from targets.sky import cone_search

CONE_PARAMETERS = [
    OpenApiParameter("ra", float, description="Cone centre RA, degrees"),
    OpenApiParameter("dec", float, description="Cone centre Dec, degrees"),
    OpenApiParameter("radius_deg", float, description="Cone radius, degrees"),
]


def apply_cone(request, queryset):
    """Narrow ``queryset`` to the cone in the query string, if one is given."""
    cone = ConeQuerySerializer(data=request.query_params)
    cone.is_valid(raise_exception=True)
    if "ra" not in cone.validated_data:
        return queryset, False
    c = cone.validated_data
    return cone_search(queryset, c["ra"], c["dec"], c["radius_deg"]), True


class TargetViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                    mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Targets of the caller's networks (the ranked list per site: scheduling.api.RankedTargetViewSet)."""

    permission_classes = [Authenticated]
    serializer_class = TargetSerializer
    filterset_class = TargetFilter

    def get_queryset(self):
        return (Target.objects.filter(network__in=scoped_networks(self.request))
                .select_related("network")
                .prefetch_related(Prefetch("aliases", queryset=TargetAlias.objects.order_by("name"))))

    def filter_queryset(self, queryset):
        queryset = super().filter_queryset(queryset)
        name = self.request.query_params.get("name")
        if name:
            # One query for every network in scope: the name or an alias, case and spaces ignored.
            key = name_key(name)
            named = (Target.objects.filter(network__in=scoped_networks(self.request))
                     .filter(Q(name_key=key) | Q(aliases__name_key=key)))
            queryset = queryset.filter(pk__in=named.values("pk"))
        return queryset

    @extend_schema(
        parameters=[*CONE_PARAMETERS,
                    OpenApiParameter("name", str, description="Exact name or alias (case and spaces ignored)")],
        responses={200: TargetSearchResultSerializer(many=True)},
        description="The filtered list (paginated, cone search with ra/dec/radius_deg).",
    )
    def list(self, request, *args, **kwargs):
        queryset, is_cone = apply_cone(request, self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        serializer_class = TargetSearchResultSerializer if is_cone else TargetSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(request=TargetWriteSerializer, responses={201: TargetSerializer})
    def create(self, request, *args, **kwargs):
        if is_agent(request):
            raise PermissionDenied("site keys may not create targets")
        serializer = TargetWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        network = network_for_write(request, data.pop("network", None), MANAGING_ROLES)
        try:
            target = create_target(network, **data)
        except NameTaken as exc:
            raise ValidationError({"name": [str(exc)]}) from exc
        return Response(TargetSerializer(target).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=TargetWriteSerializer, responses=TargetSerializer)
    def update(self, request, *args, **kwargs):
        target = self.get_object()
        if not can_manage(request, target.network_id):
            raise PermissionDenied("only the network's managers may edit targets")
        serializer = TargetWriteSerializer(target, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        data.pop("network", None)
        aliases = data.pop("aliases", None)
        try:
            update_target(target, data, aliases)
        except TargetNameInUse as exc:
            raise ValidationError({"name": [str(exc)]}) from exc
        except NameTaken as exc:
            raise ValidationError({"aliases": [str(exc)]}) from exc
        return Response(TargetSerializer(self.get_queryset().get(pk=target.pk)).data)


class CampaignViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Campaigns of the caller's networks; the detail adds targets and progress."""

    permission_classes = [NotForAgents]
    serializer_class = CampaignSerializer
    filterset_fields = ["is_active", "coverage_policy"]

    def get_queryset(self):
        return campaigns_with_counts(Campaign.objects.filter(network__in=scoped_networks(self.request))
                                     .select_related("network"))

    @extend_schema(responses=CampaignDetailSerializer)
    def retrieve(self, request, *args, **kwargs):
        campaign = self.get_object()
        campaign.progress = campaign_progress(campaign)
        return Response(CampaignDetailSerializer(campaign).data)


class AlertViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                   viewsets.GenericViewSet):
    """Alerts from brokers and streams. POST is for ingestion services (managers' tokens)."""

    permission_classes = [NotForAgents]
    serializer_class = AlertSerializer
    filterset_fields = ["source", "alert_type"]

    def get_queryset(self):
        return Alert.objects.filter(network__in=scoped_networks(self.request)).select_related("network")

    @extend_schema(request=AlertSerializer, responses={201: AlertSerializer, 200: AlertSerializer},
                   description="Idempotent on (source, external_id): a repeat answers 200 with the stored alert.")
    def create(self, request, *args, **kwargs):
        serializer = AlertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        network = network_for_write(request, data.pop("network", None), MANAGING_ROLES)
        received = receive_alert(network, **data)
        return Response(AlertSerializer(received.alert).data,
                        status=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK)
