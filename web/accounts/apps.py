"""Django app config of accounts."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts app."""

    name = "web.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Publish account changes to the orchestrators (web/accounts/signals.py)."""
        from web.accounts import signals

        signals.connect()
