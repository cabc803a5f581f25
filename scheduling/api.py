"""API v1: /api/v1/sites/{id}/tasking, tonight's tasking files for a site to download."""
from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.views import APIView

from network.api import Authenticated, can_operate_site, get_scoped_or_404, is_agent, scoped_networks
from observations.exports import TASKING_FORMATS, EkosOptions, TaskingError
from observations.tasking import tasking_for_site, zip_files
from sites.models import Site


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
