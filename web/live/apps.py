"""Django app config of live."""

from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live app."""

    name = "web.live"
    label = "live"
