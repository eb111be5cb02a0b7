"""Django app config of live."""

from __future__ import annotations

from django.apps import AppConfig


class LiveConfig(AppConfig):
    """Live app."""

    name = "web.live"
    label = "live"

    def ready(self) -> None:
        """Sockets end with their session and account: connect the signals that tell them."""
        from web.live import sessions

        sessions.connect()
