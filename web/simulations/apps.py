"""Django app config of simulations."""

from __future__ import annotations

from django.apps import AppConfig


class SimulationsConfig(AppConfig):
    """Simulations app."""

    name = "web.simulations"
    label = "simulations"
    default_auto_field = "django.db.models.BigAutoField"
