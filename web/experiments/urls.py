"""Create-experiment URLs."""

from __future__ import annotations

from django.urls import path

from web.experiments import views

app_name = "experiments"
urlpatterns = [
    path("new/", views.new, name="new"),
]
