"""API v1: /api/v1/sites, heartbeats and keys."""
from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response

from network.api import (
    Authenticated,
    can_operate_site,
    get_scoped_or_404,
    is_agent,
    network_for_write,
    scoped_networks,
)
from network.models import OBSERVING_ROLES
from sites.filters import SiteFilter
from sites.models import Site, SiteKey
from sites.serializers import (
    HeartbeatSerializer,
    IssuedSiteKeySerializer,
    SiteCreateSerializer,
    SiteKeyCreateSerializer,
    SiteKeySerializer,
    SiteSerializer,
)
from sites.services import SiteNameTaken, create_site, issue_site_key, record_heartbeat, revoke_site_key


class SiteViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, mixins.CreateModelMixin,
                  mixins.UpdateModelMixin, viewsets.GenericViewSet):
    """Sites of the caller's networks. An agent sees only its own site."""

    permission_classes = [Authenticated]
    serializer_class = SiteSerializer
    filterset_class = SiteFilter

    def get_queryset(self):
        sites = Site.objects.select_related("network", "owner")
        if is_agent(self.request):
            return sites.filter(pk=self.request.auth.site_id)
        return sites.filter(network__in=scoped_networks(self.request))

    def get_serializer_class(self):
        if self.action == "create":
            return SiteCreateSerializer
        return SiteSerializer

    @extend_schema(request=SiteCreateSerializer, responses={201: SiteSerializer})
    def create(self, request, *args, **kwargs):
        if is_agent(request):
            raise PermissionDenied("site keys may not register sites")
        serializer = SiteCreateSerializer(data=request.data, context=self.get_serializer_context())
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        network = network_for_write(request, data.pop("network", None), OBSERVING_ROLES)
        try:
            site = create_site(network, request.user, **data)
        except SiteNameTaken as exc:
            raise ValidationError({"name": [str(exc)]}) from exc
        return Response(SiteSerializer(site).data, status=status.HTTP_201_CREATED)

    def perform_update(self, serializer):
        if is_agent(self.request) or not can_operate_site(self.request, serializer.instance):
            raise PermissionDenied("only the site's owner or a network manager may edit it")
        name = serializer.validated_data.get("name")
        site = serializer.instance
        if name and Site.objects.filter(network_id=site.network_id, name=name).exclude(pk=site.pk).exists():
            raise ValidationError({"name": [f"this network already has a site named {name!r}"]})
        serializer.save()

    @extend_schema(request=HeartbeatSerializer, responses=SiteSerializer)
    @action(detail=True, methods=["put", "post"], url_path="heartbeat")
    def heartbeat(self, request, pk=None):
        """The agent checks in: marks the site seen now, with its status and the weather."""
        site = get_scoped_or_404(self.get_queryset(), pk=pk)
        if not can_operate_site(request, site):
            raise PermissionDenied("only the site's agent, owner or a network manager may send its heartbeat")
        serializer = HeartbeatSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        site = record_heartbeat(site, **serializer.validated_data)
        return Response(SiteSerializer(site).data)

    @extend_schema(request=SiteKeyCreateSerializer, responses={200: SiteKeySerializer(many=True),
                                                               201: IssuedSiteKeySerializer})
    @action(detail=True, methods=["get", "post"], url_path="keys")
    def keys(self, request, pk=None):
        """List the site's keys (never the keys themselves) or issue a new one (shown once)."""
        site = get_scoped_or_404(self.get_queryset(), pk=pk)
        if is_agent(request) or not can_operate_site(request, site):
            raise PermissionDenied("only the site's owner or a network manager may manage its keys")
        if request.method == "GET":
            return Response(SiteKeySerializer(site.keys.all(), many=True).data)
        serializer = SiteKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        issued = issue_site_key(site, label=serializer.validated_data["label"], created_by=request.user)
        body = SiteKeySerializer(issued.key).data | {"key": issued.plaintext}
        return Response(body, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=SiteKeySerializer)
    @action(detail=True, methods=["post"], url_path=r"keys/(?P<key_id>\d+)/revoke")
    def revoke_key(self, request, pk=None, key_id=None):
        """Revoke one of the site's keys; the agent using it gets 401 from then on."""
        site = get_scoped_or_404(self.get_queryset(), pk=pk)
        if is_agent(request) or not can_operate_site(request, site):
            raise PermissionDenied("only the site's owner or a network manager may revoke its keys")
        key = get_scoped_or_404(SiteKey.objects.filter(site=site), pk=key_id)
        revoke_site_key(key)
        return Response(SiteKeySerializer(key).data)
