"""API v1: /api/v1/observations and /api/v1/lightcurve/{target_id}."""
from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from network.api import Authenticated, NotForAgents, get_scoped_or_404, is_agent, scoped_networks
from observations.filters import ObservationFilter
from observations.models import Observation
from observations.selectors import light_curve
from observations.serializers import (
    BatchResultSerializer,
    LightCurvePointSerializer,
    ObservationInputSerializer,
    ObservationSearchResultSerializer,
    ObservationSerializer,
)
from observations.services import BatchReferences, Uploader, submit_observations
from targets.alerts.selectors import survey_light_curve
from targets.api import CONE_PARAMETERS, apply_cone
from targets.models import Target

MAX_BATCH = 500


def uploader_for(request) -> Uploader:
    if is_agent(request):
        return Uploader(site_key=request.auth)
    return Uploader(user=request.user)


class ObservationViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Observations of the caller's networks (an agent: of its own site)."""

    permission_classes = [Authenticated]
    serializer_class = ObservationSerializer
    filterset_class = ObservationFilter
    lookup_field = "observation_id"

    def get_queryset(self):
        rows = Observation.objects.select_related("network", "target")
        if is_agent(self.request):
            return rows.filter(site_id=self.request.auth.site_id)
        return rows.filter(network__in=scoped_networks(self.request))

    @extend_schema(parameters=CONE_PARAMETERS, responses=ObservationSearchResultSerializer(many=True))
    def list(self, request, *args, **kwargs):
        queryset, is_cone = apply_cone(request, self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        serializer_class = ObservationSearchResultSerializer if is_cone else ObservationSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(
        request=ObservationInputSerializer,
        responses={201: ObservationSerializer, 200: ObservationSerializer},
        description="One record (an object) or several (a list, at most 500; the reply is then a "
                    "BatchResult). Idempotent on observation_id: a retry gets the stored record with "
                    "200 and nothing new is created. A list is stored all or nothing.",
    )
    def create(self, request, *args, **kwargs):
        many = isinstance(request.data, list)
        items = request.data if many else [request.data]
        if not items:
            raise ValidationError({"detail": "empty list: send at least one observation"})
        if len(items) > MAX_BATCH:
            raise ValidationError({"detail": f"at most {MAX_BATCH} observations per request, got {len(items)}"})
        if not all(isinstance(item, dict) for item in items):
            raise ValidationError({"detail": "send an observation object or a list of observation objects"})
        uploader = uploader_for(request)
        if not is_agent(request) and not uploader.sites().exists():
            raise PermissionDenied("you have no site you may submit observations for")
        outcome = submit_observations(items, uploader, self._validator(BatchReferences(uploader, items)))
        errors = outcome.errors
        if not outcome.ok:
            if many:
                invalid = sum(1 for e in errors if e)
                return Response({"detail": f"{invalid} of {len(items)} observations are invalid; nothing was stored",
                                 "errors": errors}, status=status.HTTP_400_BAD_REQUEST)
            return Response(errors[0], status=status.HTTP_400_BAD_REQUEST)
        results, created = outcome.results, outcome.created
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        if not many:
            return Response(ObservationSerializer(results[0].observation).data, status=code)
        return Response({"created": created, "existing": len(results) - created,
                         "results": ObservationSerializer([r.observation for r in results], many=True).data},
                        status=code)

    @staticmethod
    def _validator(references: BatchReferences):
        """One item through ObservationInputSerializer, its names resolved for this uploader."""
        def resolve(attrs):
            attrs, problems = references.resolve(attrs)
            if problems:
                raise serializers.ValidationError(problems)
            return attrs

        # One serializer for the whole batch: DRF copies a serializer's fields for each instance,
        # which for a batch of hundreds cost more than storing it.
        serializer = ObservationInputSerializer(context={"resolve": resolve})

        def validate(item: dict) -> tuple[dict | None, dict]:
            try:
                return serializer.run_validation(item), {}
            except serializers.ValidationError as exc:
                return None, exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}

        return validate


class LightCurveView(APIView):
    """A target's photometry per filter, time-ordered, with errors (binned when long)."""

    permission_classes = [NotForAgents]

    @extend_schema(
        parameters=[
            OpenApiParameter("filter", str, description="Only this filter"),
            OpenApiParameter("after", str, description="UTC ISO-8601 lower bound"),
            OpenApiParameter("before", str, description="UTC ISO-8601 upper bound"),
            OpenApiParameter("max_points", int, description="Per filter, 10..20000 (default 2000)"),
            OpenApiParameter("bin_minutes", float, description="Average into fixed bins of this many minutes"),
        ],
        responses={200: {"type": "object", "properties": {
            "target_id": {"type": "integer"}, "target_name": {"type": "string"},
            "filters": {"type": "object", "additionalProperties": {
                "type": "array", "items": {"$ref": "#/components/schemas/LightCurvePoint"}}}}}},
    )
    def get(self, request, target_id: int):
        target = get_scoped_or_404(Target.objects.filter(network__in=scoped_networks(request)), pk=target_id)
        query = LightCurveQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        q = query.validated_data
        curves = light_curve(target, filter_name=q.get("filter"), after=q.get("after"), before=q.get("before"),
                             max_points=q["max_points"], bin_minutes=q.get("bin_minutes"))
        return Response({
            "target_id": target.pk,
            "target_name": target.name,
            "filters": {name: LightCurvePointSerializer(points, many=True).data for name, points in curves.items()},
            # The surveys' points (e.g. ZTF from its alerts) beside the network's own.
            "survey": survey_light_curve(target, q["max_points"]),
        })


class LightCurveQuerySerializer(serializers.Serializer):
    filter = serializers.CharField(required=False, max_length=32)
    after = serializers.DateTimeField(required=False)
    before = serializers.DateTimeField(required=False)
    max_points = serializers.IntegerField(required=False, min_value=10, max_value=20000, default=2000)
    bin_minutes = serializers.FloatField(required=False, min_value=0.1, max_value=10080)


__all__ = ["BatchResultSerializer", "LightCurveView", "ObservationViewSet"]
