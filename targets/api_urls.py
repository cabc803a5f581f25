"""API v1 routes of targets: campaigns, alerts, alert rules and feeds (targets/ itself is served by scheduling/api_urls.py,
which extends the viewset with each site's ranked list)."""
from network.api_routers import OptionalSlashRouter
from targets.alerts.api import AlertFeedViewSet, AlertRuleViewSet, AlertStatusViewSet
from targets.api import CampaignViewSet

router = OptionalSlashRouter()
router.register("campaigns", CampaignViewSet, basename="campaign")
router.register("alerts", AlertStatusViewSet, basename="alert")
router.register("alert-rules", AlertRuleViewSet, basename="alert-rule")
router.register("alert-feeds", AlertFeedViewSet, basename="alert-feed")

urlpatterns = router.urls
