"""API v1 of the scheduler: a site's ranked list and tonight's tasking files.

* ``GET /api/v1/targets?site_id=`` (or any agent's ``GET /api/v1/targets``): the site's ranked
  list, with an ETag for ``If-None-Match``; ``GET /api/v1/targets/last_changed``: a cache read
  for cheap polls. :class:`RankedTargetViewSet` extends the targets app's viewset with them.
* ``GET /api/v1/sites/{id}/tasking``: tonight's tasking for Ekos, N.I.N.A. or CSV.
"""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from network.api import Authenticated, can_operate_site, get_scoped_or_404, is_agent, scoped_networks
from scheduling.exports import TASKING_FORMATS, EkosOptions, TaskingError
from scheduling.passes import list_state
from scheduling.poll import respond, serve_list
from scheduling.tasking import tasking_for_site, zip_files
from sites.models import Site
from sites.services import SiteState
from targets.api import CONE_PARAMETERS, TargetViewSet
from targets.models import Campaign
from targets.serializers import (
    ListStateSerializer,
    RankedListSerializer,
    RankingQuerySerializer,
    SiteQuerySerializer,
    TargetPageSerializer,
)


class RankedTargetViewSet(TargetViewSet):
    """Targets, and for an agent (or anyone passing ``site_id``) its site's ranked list."""

    @extend_schema(
        parameters=[*CONE_PARAMETERS, RankingQuerySerializer,
                    OpenApiParameter("name", str, description="Exact name or alias (case and spaces ignored)")],
        responses={200: PolymorphicProxySerializer(
            component_name="TargetsOrRankedList", serializers=[TargetPageSerializer, RankedListSerializer],
            resource_type_field_name=None, many=False), 304: None},
        description="People: the filtered list (paginated, cone search with ra/dec/radius_deg; "
                    "separation_deg only with a cone search). Agents, or anyone passing site_id: the site's "
                    "ranked list, with an ETag; If-None-Match with it answers 304 while the list is unchanged.",
    )
    def list(self, request, *args, **kwargs):
        if is_agent(request) or "site_id" in request.query_params:
            return self.ranked(request)
        return super().list(request, *args, **kwargs)

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
        # The same bytes as the fast path's (scheduling.poll), from the same cache.
        served = serve_list(SiteState.of(site), params["count"], params.get("priority_min"), campaign)
        return respond(served, request.headers.get("If-None-Match"))

    @extend_schema(parameters=[SiteQuerySerializer], responses=ListStateSerializer)
    @action(detail=False, methods=["get"], url_path="last_changed")
    def last_changed(self, request):
        """When the site's ranked list last changed: a cache read, for agents to poll cheaply."""
        query = SiteQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        site = self._asking_site(request, query.validated_data.get("site_id"))
        state = list_state(site)
        return Response({"site_id": site.pk, **state})



class TaskingQuerySerializer(serializers.Serializer):
    # Not "format": DRF reserves ?format= for choosing a renderer.
    output = serializers.ChoiceField(choices=TASKING_FORMATS, default="ekos",
                                     help_text="ekos (.esl + .esq, zipped), nina (zipped JSON) or csv")
    profile = serializers.CharField(required=False, help_text="Ekos equipment profile (default 'Default')")
    sequence_dir = serializers.CharField(required=False, help_text="Absolute folder of the .esq files on the "
                                                                   "KStars machine")
    template = serializers.JSONField(required=False, help_text="N.I.N.A. target or sequence template (POST)")


class TaskingView(APIView):
    """Tonight's plan for a site as KStars/Ekos (.esl + .esq, zipped), N.I.N.A. (zipped JSON) or CSV.

    GET for Ekos and CSV (``?output=``); POST with ``{"output": "nina", "template": {...}}`` for N.I.N.A.,
    whose files are the user's own template filled in.
    """

    permission_classes = [Authenticated]

    def _site(self, request, site_id: int) -> Site:
        sites = Site.objects.select_related("network")
        if is_agent(request):
            sites = sites.filter(pk=request.auth.site_id)
        else:
            sites = sites.filter(network__in=scoped_networks(request))
        site = get_scoped_or_404(sites, pk=site_id)
        if not can_operate_site(request, site):
            raise PermissionDenied("only the site's agent, its owner or a network manager may download its tasking")
        return site

    def _respond(self, request, site_id: int, data) -> HttpResponse:
        query = TaskingQuerySerializer(data=data)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        site = self._site(request, site_id)
        try:
            options = EkosOptions(**{k: params[k] for k in ("profile", "sequence_dir") if k in params})
            _, files = tasking_for_site(site, params["output"], ekos_options=options,
                                        nina_template=params.get("template"))
        except TaskingError as exc:
            raise ValidationError({"detail": [str(exc)]}) from exc
        stem = f"tasking-site{site.pk}"
        if params["output"] == "csv":
            response = HttpResponse(next(iter(files.values())), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{stem}.csv"'
            return response
        response = HttpResponse(zip_files(files), content_type="application/zip")
        response["Content-Disposition"] = f'attachment; filename="{stem}-{params["output"]}.zip"'
        return response

    @extend_schema(parameters=[OpenApiParameter("output", str, enum=list(TASKING_FORMATS)),
                               OpenApiParameter("profile", str), OpenApiParameter("sequence_dir", str)],
                   responses={(200, "application/zip"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.STR})
    def get(self, request, site_id: int):
        return self._respond(request, site_id, request.query_params)

    @extend_schema(request=TaskingQuerySerializer,
                   responses={(200, "application/zip"): OpenApiTypes.BINARY, (200, "text/csv"): OpenApiTypes.STR})
    def post(self, request, site_id: int):
        return self._respond(request, site_id, request.data)
