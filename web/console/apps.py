"""Django app config of the admin console."""

from __future__ import annotations

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    """Console app (no models: users live in auth, quotas in accounts)."""

    name = "web.console"
    label = "console"
