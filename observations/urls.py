"""Portal pages of observations (the project URLconf, network/urls.py, includes them at the root)."""
from django.urls import path

from observations import views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
]
