"""API v1 routes of targets: campaigns and alerts (targets/ itself is served by scheduling/api_urls.py,
which extends the viewset with each site's ranked list)."""
from network.api_routers import OptionalSlashRouter
from targets.api import AlertViewSet, CampaignViewSet

router = OptionalSlashRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("alerts", AlertViewSet, basename="alert")

urlpatterns = router.urls
