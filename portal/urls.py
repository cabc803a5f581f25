"""Portal routes (included at the site root by network/urls.py)."""
from django.urls import path

from portal.views import campaigns, dashboard, frames, history, mine, movers, sites, targets

app_name = "portal"

urlpatterns = [
    path("", dashboard.dashboard, name="dashboard"),
    path("live/recent", dashboard.live_recent, name="live-recent"),
    path("map.json", history.network_map, name="network-map"),
    path("targets/", targets.target_list, name="targets"),
    path("targets/<int:pk>/", targets.target_detail, name="target"),
    path("targets/<int:pk>/lightcurve.json", targets.target_lightcurve, name="target-lightcurve"),
    path("targets/<int:pk>/altitude.json", targets.target_altitude, name="target-altitude"),
    path("targets/<int:pk>/movers", movers.run_movers, name="target-movers"),
    path("movers/<int:pk>/report", movers.mover_report, name="mover-report"),
    path("campaigns/", campaigns.campaign_list, name="campaigns"),
    path("campaigns/<int:pk>/", campaigns.campaign_detail, name="campaign"),
    path("sites/new", sites.site_new, name="site-new"),
    path("sites/<int:pk>/", sites.site_detail, name="site"),
    path("sites/<int:pk>/edit", sites.site_edit, name="site-edit"),
    path("sites/<int:pk>/plan", dashboard.site_plan, name="site-plan"),
    path("sites/<int:pk>/quality.json", sites.site_quality, name="site-quality"),
    path("sites/<int:pk>/history.json", history.site_history, name="site-history"),
    path("sites/<int:pk>/keys", sites.key_create, name="key-create"),
    path("sites/<int:pk>/keys/<int:key_id>/revoke", sites.key_revoke, name="key-revoke"),
    path("sites/<int:pk>/tasking/<str:fmt>", sites.site_tasking, name="site-tasking"),
    path("frames/", frames.frame_list, name="frames"),
    path("frames/<int:pk>/", frames.frame_detail, name="frame"),
    path("me/", mine.my_observatory, name="mine"),
    path("me/invite", mine.invite, name="invite"),
    path("invitations/<str:token>", mine.accept_invitation, name="invitation"),
]
