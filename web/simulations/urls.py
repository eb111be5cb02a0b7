"""Simulation page URLs."""

from __future__ import annotations

from django.urls import path

from web.simulations import grid_views, views

app_name = "simulations"
urlpatterns = [
    path("", views.simulation_list, name="list"),
    path("overlay/", views.simulation_overlay, name="overlay"),
    path("grid/", grid_views.simulation_grid, name="grid"),
    path("<uuid:simulation_id>/", views.simulation_detail, name="detail"),
]
