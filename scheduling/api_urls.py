"""API v1 routes of the scheduler: targets with each site's ranked list, a site's tasking files."""
from django.urls import re_path

from network.api_routers import OptionalSlashRouter
from scheduling.api import RankedTargetViewSet, TaskingView
from scheduling.poll import agent_targets

router = OptionalSlashRouter()
router.register("targets", RankedTargetViewSet, basename="target")

urlpatterns = [
    re_path(r"^sites/(?P<site_id>\d+)/tasking/?$", TaskingView.as_view(), name="site-tasking"),
    *router.urls,
]
# An agent's plain poll of its list is answered from the cache before DRF (scheduling.poll).
for pattern in urlpatterns:
    if getattr(pattern, "name", None) == "target-list":
        pattern.callback = agent_targets(pattern.callback)
