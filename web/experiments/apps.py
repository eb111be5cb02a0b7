"""Django app config of the create-experiment form."""

from __future__ import annotations

from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    """Create-form app (no models: experiments live in web.simulations)."""

    name = "web.experiments"
    label = "experiment_form"
