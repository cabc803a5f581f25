"""API v1: /api/v1/targets, /api/v1/campaigns, /api/v1/alerts."""
from __future__ import annotations

from django.db.models import Prefetch, Q
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from network.api import (
    Authenticated,
    NotForAgents,
    can_manage,
    get_scoped_or_404,
    is_agent,
    network_for_write,
    scoped_networks,
)
from network.models import MANAGING_ROLES
from network.schedules import list_state
from sites.models import Site
from targets.filters import TargetFilter
from targets.models import Alert, Campaign, Target, TargetAlias, name_key
from targets.ranking import ranked_targets
from targets.selectors import campaign_progress, campaigns_with_counts
from targets.serializers import (
    AlertSerializer,
    CampaignDetailSerializer,
    CampaignSerializer,
    ConeQuerySerializer,
    ListStateSerializer,
    RankingQuerySerializer,
    SiteQuerySerializer,
    TargetSearchResultSerializer,
    TargetSerializer,
    TargetWriteSerializer,
)
from targets.services import NameTaken, create_target, names_in_use, receive_alert, set_aliases
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
    """Targets. An agent (or anyone passing ``site_id``) gets its site's ranked list."""

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
        parameters=[*CONE_PARAMETERS, RankingQuerySerializer,
                    OpenApiParameter("name", str, description="Exact name or alias (case and spaces ignored)")],
        responses={200: TargetSearchResultSerializer(many=True)},
        description="People: the filtered list (paginated, cone search with ra/dec/radius_deg). "
                    "Agents, or anyone passing site_id: the site's ranked list (see RankedList).",
    )
    def list(self, request, *args, **kwargs):
        if is_agent(request) or "site_id" in request.query_params:
            return self.ranked(request)
        queryset, is_cone = apply_cone(request, self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        serializer_class = TargetSearchResultSerializer if is_cone else TargetSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)

    def _asking_site(self, request, site_id: int | None) -> Site:
        if is_agent(request):
            site = request.auth.site
            if site_id not in (None, site.pk):
                raise ValidationError({"site_id": ["a site key may only ask for its own site's targets"]})
            return site
        if site_id is None:
            raise ValidationError({"site_id": ["give the site whose list you want"]})
        sites = Site.objects.filter(network__in=scoped_networks(request)).select_related("network")
        return get_scoped_or_404(sites, pk=site_id)

    def ranked(self, request):
        query = RankingQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        site = self._asking_site(request, params.get("site_id"))
        campaign = None
        if params.get("campaign") is not None:
            campaign = Campaign.objects.filter(network_id=site.network_id, pk=params["campaign"]).first()
            if campaign is None:
                raise ValidationError({"campaign": [f"no campaign {params['campaign']} in this site's network"]})
        ranked = ranked_targets(site, params["count"], params.get("priority_min"), campaign)
        # The list's content and the query decide the body: agents send it back in If-None-Match.
        etag = f'"{ranked.etag}-{params["count"]}-{params.get("priority_min")}-{params.get("campaign")}"'
        if ranked.etag and request.headers.get("If-None-Match") == etag:
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
        # Rows come in RankedTargetSerializer's shape already (targets.ranking.target_rows).
        rows = [{"rank": rank, "score": item.score, "reason": item.reason, "plan": item.plan, **item.target}
                for rank, item in enumerate(ranked.targets, start=1)]
        return Response({"site_id": site.pk, "network": site.network.slug, "generated_at": ranked.generated_at,
                         "valid_until": ranked.valid_until, "last_changed": ranked.last_changed,
                         "stale": ranked.stale, "reason": ranked.reason, "targets": rows},
                        headers={"ETag": etag} if ranked.etag else None)

    @extend_schema(parameters=[SiteQuerySerializer], responses=ListStateSerializer)
    @action(detail=False, methods=["get"], url_path="last_changed")
    def last_changed(self, request):
        """When the site's ranked list last changed: a cache read, for agents to poll cheaply."""
        query = SiteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        site = self._asking_site(request, query.validated_data.get("site_id"))
        state = list_state(site)
        return Response({"site_id": site.pk, **state})

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
        if "name" in data and names_in_use(target.network, [data["name"]], exclude_target=target):
            raise ValidationError({"name": [f"{data['name']!r} is already a target name or alias in this network"]})
        for field, value in data.items():
            setattr(target, field, value)
        try:
            if aliases is not None:
                set_aliases(target, aliases)
            target.save()
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

    def create(self, request, *args, **kwargs):
        serializer = AlertSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        network = network_for_write(request, data.pop("network", None), MANAGING_ROLES)
        received = receive_alert(network, **data)
        return Response(AlertSerializer(received.alert).data,
                        status=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK)
