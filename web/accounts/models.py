"""Account tables: API tokens (only a SHA-256 is stored), quotas, failed logins, sign-ups."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models.functions import Now

TOKEN_PREFIX = "nnt_"


def hash_token(token: str) -> str:
    """SHA-256 hex of a token (tokens are random, so no slow hash is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A fresh random token, shown to its owner once."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    """A bearer token for scripts; the clear text is never stored."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, default="", blank=True)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=12, help_text="First characters, to recognise a token")
    created_at = models.DateTimeField(db_default=Now())
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "nnt_api_token"

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def issue(cls, user: object, name: str = "") -> tuple[ApiToken, str]:
        """Create a token for a user; return the row and the clear text."""
        token = new_token()
        row = cls.objects.create(
            user=user, name=name, key_hash=hash_token(token), prefix=token[:12]
        )
        return row, token


class Quota(models.Model):
    """Per-user limits set by an admin; an empty field means the default from settings."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="quota"
    )
    max_concurrent_runs = models.PositiveIntegerField(null=True, blank=True)
    max_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # No default in settings: empty means no limit of that kind.
    max_queued_runs = models.PositiveIntegerField(null=True, blank=True)
    max_runs_per_experiment = models.PositiveIntegerField(null=True, blank=True)
    max_epochs = models.PositiveIntegerField(null=True, blank=True)
    max_storage_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    # Empty: the orchestrator's NNT_RUN_MEMORY_BYTES / NNT_RUN_CPUS; set, they only lower them.
    max_run_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    max_run_cpus = models.FloatField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "nnt_quota"

    def __str__(self) -> str:
        return f"quota of {self.user}"


class CommandKey(models.Model):
    """The generation of a user's command key (schemas/auth.py); bumping it revokes the key."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="command_key"
    )
    generation = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "nnt_command_key"

    def __str__(self) -> str:
        return f"command key {self.generation} of {self.user}"


class LoginFailure(models.Model):
    """One failed login, counted per (username, IP) by web.accounts.throttle."""

    username = models.CharField(max_length=150)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "nnt_login_failure"
        indexes = [models.Index(fields=["username", "ip", "at"], name="nnt_login_failure_key")]

    def __str__(self) -> str:
        return f"{self.username}@{self.ip} {self.at}"


class Registration(models.Model):
    """One account created, counted per IP by web.accounts.throttle (no user link: it outlives
    deleted accounts, which is the point of a sign-up limit)."""

    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "nnt_registration"
        indexes = [models.Index(fields=["ip", "at"], name="nnt_registration_key")]

    def __str__(self) -> str:
        return f"{self.ip} {self.at}"


ALERT_CHOICES = [
    ("off", "Off"),
    ("fatal", "Fatal only (NaN, diverging loss, dead network)"),
    ("all", "All diagnoses"),
]


class AlertPreference(models.Model):
    """Which new diagnoses of a user's runs are announced on every page (web.live alerts)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_preference"
    )
    diagnoses = models.CharField(max_length=8, choices=ALERT_CHOICES, default="off")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "nnt_alert_preference"

    def __str__(self) -> str:
        return f"diagnosis alerts {self.diagnoses} of {self.user}"
