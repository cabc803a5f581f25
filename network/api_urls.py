"""API v1 routes: the schema and docs here, each app's routes in its own ``api_urls`` module.

Apps are named as strings, so the project package imports none of them. Paths work with and
without the trailing slash (agents never get redirects: see network.api_routers.OptionalSlashRouter).
"""
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# scheduling first: it serves targets/ (extended with the ranked list per site).
API_APPS = ("scheduling", "observations", "sites", "targets")

urlpatterns = [
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    *(path("", include(f"{app}.api_urls")) for app in API_APPS),
]
