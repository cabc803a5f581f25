from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from network import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("network.api_urls")),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("portal.urls")),
    path("favicon.ico", views.favicon, name="favicon"),
    path("networks/<slug:slug>/switch", views.switch_network_view, name="switch-network"),
]

handler404 = "network.views.not_found"
handler500 = "network.views.server_error"
