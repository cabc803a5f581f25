"""API v1: ``GET /api/v1/exports/aavso``, photometry per observer or per campaign, AAVSO or CSV."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet
from django.http import Http404, HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from network.api import NotForAgents, get_scoped_or_404, scoped_networks
from network.models import Membership
from observations.exports.aavso import DELIMITERS, OBSTYPES, ExportError, csv_format, extended_format
from observations.models import Observation
from targets.models import Campaign

SOFTWARE = "DATAS portal: aperture photometry, ensemble zero point against Tycho-2 comparison stars"


class AavsoExportQuery(serializers.Serializer):
    campaign = serializers.IntegerField(required=False, help_text="Every observation of the campaign's targets "
                                                                  "within its dates")
    observer = serializers.CharField(required=False, help_text="User id or username: observations from their sites")
    target_id = serializers.IntegerField(required=False)
    filter = serializers.CharField(required=False, max_length=32)
    after = serializers.DateTimeField(required=False)
    before = serializers.DateTimeField(required=False)
    output = serializers.ChoiceField(choices=["aavso", "csv"], default="aavso",
                                     help_text="aavso: the Extended File Format; csv: every observation")
    obscode = serializers.CharField(required=False, max_length=10, help_text="AAVSO observer code (AAVSO format)")
    delimiter = serializers.ChoiceField(choices=list(DELIMITERS), default="comma")
    date = serializers.ChoiceField(choices=["JD", "HJD"], default="JD")
    obstype = serializers.ChoiceField(choices=list(OBSTYPES), default="CCD")

    def validate(self, attrs):
        if ("campaign" in attrs) == ("observer" in attrs):
            raise serializers.ValidationError({"detail": ["give either campaign (an id) or observer (a user id or "
                                                          "username)"]})
        if attrs["output"] == "aavso" and not attrs.get("obscode"):
            raise serializers.ValidationError({"obscode": ["the AAVSO format needs the submitting observer's "
                                                           "AAVSO code"]})
        return attrs


class AavsoExportView(APIView):
    """Photometry for submission to the AAVSO (WebObs), or as CSV."""

    permission_classes = [NotForAgents]

    @extend_schema(parameters=[AavsoExportQuery], responses={
        (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="AAVSO Extended File Format; X-DATAS-Skipped counts "
                                                         "observations left out (the CSV says why)"),
        (200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="One row per observation")})
    def get(self, request):
        query = AavsoExportQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        observations, label = self._select(request, q)
        if q["output"] == "csv":
            response = HttpResponse(csv_format(observations), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="photometry-{label}.csv"'
            return response
        try:
            report = extended_format(observations, obscode=q["obscode"].upper(), software=SOFTWARE,
                                     delimiter=q["delimiter"], date_type=q["date"], obstype=q["obstype"])
        except ExportError as exc:
            raise serializers.ValidationError({"detail": [str(exc)]}) from None
        response = HttpResponse(report.text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="aavso-{q["obscode"].upper()}-{label}.txt"'
        response["X-DATAS-Rows"] = str(report.rows)
        response["X-DATAS-Skipped"] = str(len(report.skipped))
        return response

    def _select(self, request, q: dict) -> tuple[QuerySet[Observation], str]:
        networks = scoped_networks(request)
        rows = Observation.objects.filter(network__in=networks).select_related("target", "site")
        if "campaign" in q:
            campaign = get_scoped_or_404(Campaign.objects.filter(network__in=networks), pk=q["campaign"])
            rows = rows.filter(target__campaign_memberships__campaign=campaign)
            if campaign.starts_at:
                rows = rows.filter(observed_at__gte=campaign.starts_at)
            if campaign.ends_at:
                rows = rows.filter(observed_at__lte=campaign.ends_at)
            label = f"campaign-{campaign.pk}"
        else:
            members = get_user_model().objects.filter(
                pk__in=Membership.objects.filter(network__in=networks).values("user_id"))
            value = q["observer"]
            lookup = Q(username=value) | (Q(pk=int(value)) if value.isdigit() else Q())
            user = members.filter(lookup).first()
            if user is None:
                raise Http404(f"no observer {value!r} in your networks")
            rows = rows.filter(Q(site__owner=user) | Q(submitted_by=user))
            label = f"observer-{user.pk}"
        if "target_id" in q:
            rows = rows.filter(target_id=q["target_id"])
        if q.get("filter"):
            rows = rows.filter(filter=q["filter"])
        if q.get("after"):
            rows = rows.filter(observed_at__gte=q["after"])
        if q.get("before"):
            rows = rows.filter(observed_at__lte=q["before"])
        return rows.distinct().order_by("observed_at", "pk"), label
