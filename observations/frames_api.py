"""API v1: /api/v1/frames (upload, list with cone search, detail, files, pipeline status).

Agents (site key) see and upload their own site's frames; people see their networks'
frames and upload for the sites they may submit for. Agents may also upload to
``/api/v1/observations/{observation_id}/frame``, which names the observation in the path.
"""
from __future__ import annotations

from pathlib import Path

import django_filters
from django.conf import settings
from django.http import FileResponse, HttpResponseRedirect
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response

from network.api import Authenticated, can_operate_site, get_scoped_or_404, is_agent, scoped_networks
from network.filters import IdFilter, UTCDateTimeFilter
from observations.api import uploader_for
from observations.frame_selectors import frames_of_networks, pipeline_status
from observations.frame_serializers import (
    FrameDetailSerializer,
    FrameSearchResultSerializer,
    FrameSerializer,
    FrameUploadInputSerializer,
    FrameUploadSerializer,
    PipelineStatusSerializer,
    UploadGrantInputSerializer,
)
from observations.frames import Frame, FrameUpload
from observations.states import FrameState
from observations.storage import download_url, frame_storage, is_s3
from observations.uploads import (
    UploadRejected,
    complete_upload,
    grant_upload,
    resolve_destination,
    store_frame_file,
)
from targets.api import CONE_PARAMETERS, apply_cone

# Multipart framing around the file; a body bigger than the limit plus this is refused unread.
MULTIPART_SLACK_BYTES = 64 * 1024


class FrameFilter(django_filters.FilterSet):
    target_id = IdFilter(field_name="target_id")
    site_id = IdFilter(field_name="site_id")
    state = django_filters.ChoiceFilter(field_name="state", choices=FrameState.choices)
    image_type = django_filters.CharFilter(field_name="image_type")
    filter = django_filters.CharFilter(field_name="filter")
    accepted = django_filters.BooleanFilter(field_name="accepted")
    after = UTCDateTimeFilter(field_name="observed_at", lookup_expr="gte")
    before = UTCDateTimeFilter(field_name="observed_at", lookup_expr="lte")

    class Meta:
        model = Frame
        fields = ["target_id", "site_id", "state", "image_type", "filter", "accepted", "after", "before"]


def _upload_response(stored, code_new=status.HTTP_201_CREATED) -> Response:
    body = {**FrameDetailSerializer(stored.frame).data, "created": stored.created, "warnings": stored.warnings}
    return Response(body, status=code_new if stored.created else status.HTTP_200_OK)


class FrameViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """FITS frames of the caller's networks (an agent: of its own site)."""

    permission_classes = [Authenticated]
    serializer_class = FrameSerializer
    filterset_class = FrameFilter
    parser_classes = [MultiPartParser, FormParser, JSONParser]
    lookup_value_regex = r"\d+"

    def get_queryset(self):
        if is_agent(self.request):
            return frames_of_networks(scoped_networks(self.request)).filter(site_id=self.request.auth.site_id)
        return frames_of_networks(scoped_networks(self.request))

    def get_serializer_class(self):
        return FrameDetailSerializer if self.action == "retrieve" else FrameSerializer

    @extend_schema(parameters=CONE_PARAMETERS, responses=FrameSearchResultSerializer(many=True),
                   description="Frames, newest first; with ra, dec and radius_deg, the frames whose WCS "
                               "centre lies in that cone, nearest first (unsolved frames have no centre).")
    def list(self, request, *args, **kwargs):
        queryset, is_cone = apply_cone(request, self.filter_queryset(self.get_queryset()))
        page = self.paginate_queryset(queryset)
        serializer_class = FrameSearchResultSerializer if is_cone else FrameSerializer
        return self.get_paginated_response(serializer_class(page, many=True).data)

    @extend_schema(
        request={"multipart/form-data": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}, "site_id": {"type": "integer"},
            "target_id": {"type": "integer"}, "observation_id": {"type": "string", "format": "uuid"},
            "sha256": {"type": "string"}}, "required": ["file"]}},
        responses={201: FrameDetailSerializer, 200: FrameDetailSerializer},
        description="Upload one FITS frame (multipart, the file in 'file'). Checked before it is stored: "
                    "size, FITS structure, header (time, exposure, frame type). The same bytes again "
                    "return the stored frame with 200 and created=false.",
    )
    def create(self, request, *args, **kwargs):
        return self._upload(request, observation_id=None)

    def upload_for_observation(self, request, observation_id: str):
        """``POST /observations/{observation_id}/frame``: the agent's route."""
        return self._upload(request, observation_id=observation_id)

    def _upload(self, request, observation_id):
        length = int(request.META.get("CONTENT_LENGTH") or 0)
        if length > settings.DATAS_MAX_FRAME_BYTES + MULTIPART_SLACK_BYTES:
            return Response({"detail": f"the request is {length / 1e6:.1f} MB; frames may be up to "
                                       f"{settings.DATAS_MAX_FRAME_BYTES / 1e6:.1f} MB (DATAS_MAX_FRAME_BYTES)"},
                            status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        if not (request.content_type or "").startswith("multipart/form-data"):
            return Response({"detail": f"send the frame as multipart/form-data with the FITS file in the field "
                                       f"'file' (got {request.content_type or 'no content type'!r})"},
                            status=status.HTTP_415_UNSUPPORTED_MEDIA_TYPE)
        upload = request.FILES.get("file")
        if upload is None:
            said = "it is a text field; attach the file itself" if "file" in request.data else "it is missing"
            return Response({"file": [f"the FITS file goes in the multipart field 'file': {said}"]},
                            status=status.HTTP_400_BAD_REQUEST)
        form = FrameUploadInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        fields = form.validated_data
        uploader = uploader_for(request)
        try:
            destination = resolve_destination(uploader, fields.get("site_id"), fields.get("target_id"),
                                              observation_id or fields.get("observation_id"))
            temporary = getattr(upload, "temporary_file_path", None)
            stored = store_frame_file(upload, upload.size, destination, uploader, original_name=upload.name or "",
                                      declared_sha256=fields.get("sha256"),
                                      local_path=Path(temporary()) if temporary else None)
        except UploadRejected as exc:
            return Response(exc.as_body(), status=exc.status)
        return _upload_response(stored)

    @extend_schema(request=UploadGrantInputSerializer, responses={201: FrameUploadSerializer},
                   description="S3 storage only: a pre-signed URL to PUT a large frame straight to the store. "
                               "Complete it with POST /frames/uploads/{upload_id}/complete.")
    @action(detail=False, methods=["post"], url_path="uploads")
    def grant(self, request):
        form = UploadGrantInputSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        fields = form.validated_data
        uploader = uploader_for(request)
        try:
            destination = resolve_destination(uploader, fields.get("site_id"), fields.get("target_id"),
                                              fields.get("observation_id"))
            upload, instructions, twin = grant_upload(destination, uploader, sha256=fields["sha256"],
                                                      size_bytes=fields["size_bytes"],
                                                      original_name=fields.get("filename", ""))
        except UploadRejected as exc:
            return Response(exc.as_body(), status=exc.status)
        if twin is not None:
            return _upload_response(twin)
        return Response({**FrameUploadSerializer(upload).data, "upload": instructions,
                         "complete": f"/api/v1/frames/uploads/{upload.upload_id}/complete"},
                        status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses={201: FrameDetailSerializer, 200: FrameDetailSerializer})
    @action(detail=False, methods=["post"], url_path=r"uploads/(?P<upload_id>[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12})/complete")
    def complete(self, request, upload_id: str):
        uploads = FrameUpload.objects.filter(network__in=scoped_networks(request)).select_related(
            "site", "target", "observation", "frame")
        if is_agent(request):
            uploads = uploads.filter(site_id=request.auth.site_id)
        upload = get_scoped_or_404(uploads, upload_id=upload_id)
        try:
            stored = complete_upload(upload, uploader_for(request))
        except UploadRejected as exc:
            return Response(exc.as_body(), status=exc.status)
        return _upload_response(stored)

    @extend_schema(responses={(200, "application/fits"): bytes, 302: None})
    @action(detail=True, methods=["get"])
    def file(self, request, pk=None):
        frame = self.get_object()
        if not frame.storage_key:  # catalogued in place (manage.py catalogue): the share holds it
            located = getattr(frame, "archive_file", None)
            raise NotFound(f"this frame was catalogued in place ({located.path if located else 'on a share'}); "
                           f"the portal holds no copy of the file")
        return self._serve(frame.storage_key, "application/fits", frame.original_name or f"{frame.sha256}.fits")

    @extend_schema(responses={(200, "image/png"): bytes, 302: None})
    @action(detail=True, methods=["get"])
    def preview(self, request, pk=None):
        frame = self.get_object()
        if not frame.preview_key:
            raise NotFound("this frame has no preview yet: the pipeline makes one in its last stage")
        return self._serve(frame.preview_key, "image/png")

    @extend_schema(responses={(200, "image/png"): bytes, 302: None})
    @action(detail=True, methods=["get"])
    def thumbnail(self, request, pk=None):
        frame = self.get_object()
        if not frame.thumbnail_key:
            raise NotFound("this frame has no thumbnail yet: the pipeline makes one in its last stage")
        return self._serve(frame.thumbnail_key, "image/png")

    def _serve(self, key: str, content_type: str, filename: str | None = None):
        if is_s3():
            return HttpResponseRedirect(download_url(key))
        try:
            handle = frame_storage().open(key, "rb")
        except FileNotFoundError:
            raise NotFound(f"{key} is missing from the frame storage") from None
        response = FileResponse(handle, content_type=content_type)
        if filename:
            response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response

    @extend_schema(
        parameters=[OpenApiParameter("target_id", int), OpenApiParameter("site_id", int)],
        responses=PipelineStatusSerializer(many=True),
        description="Pipeline status per target: frames per state, share done, recent failures.")
    @action(detail=False, methods=["get"], url_path="status", url_name="status", pagination_class=None)
    def pipeline_status(self, request):
        frames = self.filter_queryset(self.get_queryset())
        return Response(PipelineStatusSerializer(pipeline_status(frames), many=True).data)

    @extend_schema(request=None, responses={202: FrameSerializer})
    @action(detail=True, methods=["post"])
    def rerun(self, request, pk=None):
        """Run the pipeline again on a done or failed frame (site owner or network manager)."""
        frame = self.get_object()
        if is_agent(request) or not can_operate_site(request, frame.site):
            raise PermissionDenied("only the site's owner or a network manager may re-run the pipeline")
        if not frame.storage_key:
            return Response({"detail": "this frame was catalogued in place on a share: run manage.py catalogue "
                                       "on it again (the pipeline reads frames from the frame storage)"},
                            status=status.HTTP_409_CONFLICT)
        from observations.processing import rerun_frames

        rerun_frames([frame.pk])
        frame.refresh_from_db()
        return Response(FrameSerializer(frame).data, status=status.HTTP_202_ACCEPTED)
