"""API v1 routes. Paths work with and without the trailing slash (agents never get redirects)."""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from observations.api import LightCurveView, ObservationViewSet
from observations.exports.aavso_api import AavsoExportView
from observations.frames_api import FrameViewSet
from observations.tasking_api import TaskingView
from sites.api import SiteViewSet
from targets.alerts.api import AlertFeedViewSet, AlertRuleViewSet, AlertStatusViewSet
from targets.api import CampaignViewSet, TargetViewSet


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("targets", TargetViewSet, basename="target")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("alerts", AlertStatusViewSet, basename="alert")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("alert-feeds", AlertFeedViewSet, basename="alert-feed")
router.register("observations", ObservationViewSet, basename="observation")
router.register("frames", FrameViewSet, basename="frame")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^lightcurve/(?P<target_id>\d+)/?$", LightCurveView.as_view(), name="lightcurve"),
    re_path(r"^exports/aavso/?$", AavsoExportView.as_view(), name="export-aavso"),
    re_path(r"^observations/(?P<observation_id>[0-9a-fA-F-]{32,36})/frame/?$",
            FrameViewSet.as_view({"post": "upload_for_observation"}), name="observation-frame"),
    re_path(r"^sites/(?P<site_id>\d+)/tasking/?$", TaskingView.as_view(), name="site-tasking"),
    *router.urls,
]
