"""API v1 routes of observations: observations, frames and their uploads, light curves, AAVSO export."""
from django.urls import re_path

from network.api_routers import OptionalSlashRouter
from observations.api import LightCurveView, ObservationViewSet
from observations.exports.aavso_api import AavsoExportView
from observations.frames_api import FrameViewSet

router = OptionalSlashRouter()
router.register("observations", ObservationViewSet, basename="observation")
router.register("frames", FrameViewSet, basename="frame")

urlpatterns = [
    re_path(r"^lightcurve/(?P<target_id>\d+)/?$", LightCurveView.as_view(), name="lightcurve"),
    re_path(r"^exports/aavso/?$", AavsoExportView.as_view(), name="export-aavso"),
    re_path(r"^observations/(?P<observation_id>[0-9a-fA-F-]{32,36})/frame/?$",
            FrameViewSet.as_view({"post": "upload_for_observation"}), name="observation-frame"),
    *router.urls,
]
