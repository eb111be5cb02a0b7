"""Project URLs: pages, API, static assets."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path

from web import assets, views
from web.api import api

urlpatterns = [
    path("", views.home, name="home"),
    path("accounts/", include("web.accounts.urls")),
    path("simulations/", include("web.simulations.urls")),
    path("experiments/", include("web.experiments.urls")),
    path("console/", include("web.console.urls")),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
    path("static-vendor/plotly.min.js", assets.plotly_js, name="plotly_js"),
    re_path(r"^static/(?P<path>.+)$", assets.static_file, name="static_file"),
]
