"""Django app config of accounts."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Accounts app."""

    name = "web.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"
