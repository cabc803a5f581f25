"""API v1 routes of sites."""
from network.api_routers import OptionalSlashRouter
from sites.api import SiteViewSet

router = OptionalSlashRouter()
router.register("sites", SiteViewSet, basename="site")

urlpatterns = router.urls
