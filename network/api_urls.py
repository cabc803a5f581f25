"""API v1 routes. Paths work with and without the trailing slash (agents never get redirects)."""
from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from observations.api import LightCurveView, ObservationViewSet
from observations.tasking_api import TaskingView
from sites.api import SiteViewSet
from targets.api import AlertViewSet, CampaignViewSet, TargetViewSet


class OptionalSlashRouter(SimpleRouter):
    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("sites", SiteViewSet, basename="site")
router.register("targets", TargetViewSet, basename="target")
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("alerts", AlertViewSet, basename="alert")
router.register("observations", ObservationViewSet, basename="observation")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^lightcurve/(?P<target_id>\d+)/?$", LightCurveView.as_view(), name="lightcurve"),
    re_path(r"^sites/(?P<site_id>\d+)/tasking/?$", TaskingView.as_view(), name="site-tasking"),
    *router.urls,
]
