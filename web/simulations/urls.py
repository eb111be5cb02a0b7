"""Simulation page URLs."""

from __future__ import annotations

from django.urls import path

from web.simulations import views

app_name = "simulations"
urlpatterns = [
    path("", views.simulation_list, name="list"),
    path("<uuid:simulation_id>/", views.simulation_detail, name="detail"),
]
