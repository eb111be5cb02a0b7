"""Environment configuration of the web process, read once and validated (pydantic-settings)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from schemas.auth import CommandSecretSetting
from schemas.common import variable_error
from schemas.kafkaauth import KafkaSecurity
from schemas.topics import MAX_MESSAGE_BYTES

SECRET_FILE = "secret_key"


class ConfigError(ValueError):
    """A bad environment variable; the message names it and the fix."""


class WebSettings(KafkaSecurity, CommandSecretSetting):
    """Every setting of the web process, each one an environment variable (the Kafka security
    ones in schemas.kafkaauth)."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str = Field(description="PostgreSQL URI, e.g. postgresql://user:pw@host:5432/db")
    nnt_kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", min_length=1, description="host:port of the broker"
    )
    nnt_home: Path = Field(
        default=Path("~/.local/share/nntracker"),
        description="uploaded datasets and the generated secret key live here",
    )
    nnt_web_port: int = Field(
        default=8000, ge=1, le=65535, description="port daphne listens on (127.0.0.1)"
    )
    nnt_debug: bool = Field(default=False, description="Django DEBUG; never in production")
    nnt_secret_key: str | None = Field(
        default=None, description="unset: generated once into $NNT_HOME/secret_key (mode 600)"
    )
    nnt_allowed_hosts: str = Field(
        default="localhost,127.0.0.1", description="comma-separated host names served"
    )
    nnt_kafka_timeout_s: float = Field(default=5.0, gt=0, description="Producer flush timeout")
    nnt_live_bridge: bool = Field(default=True, description="Consume nnt.live in this process")
    nnt_preflight: bool = Field(
        default=True,
        description="Ask the orchestrators to pre-flight each new experiment on one batch and "
        "answer 422 with per-field errors before anything is created",
    )
    nnt_preflight_timeout_s: float = Field(
        default=300.0, gt=0, description="Longest a submission waits for the pre-flight answer"
    )
    nnt_https: bool = Field(
        default=False,
        description="Served over HTTPS (TLS ended by a proxy that sets X-Forwarded-Proto): "
        "secure cookies, HSTS and the HTTP->HTTPS redirect",
    )
    nnt_hsts_seconds: int = Field(default=31_536_000, ge=0, description="HSTS max-age")
    nnt_csrf_trusted_origins: str = Field(
        default="", description="Comma-separated origins, e.g. https://nnt.example.org"
    )
    nnt_login_max_failures: int = Field(
        default=5, ge=1, description="Failed logins per username and IP before a lockout"
    )
    nnt_login_window_s: int = Field(
        default=900, ge=1, description="Window of counted failures, and the lockout length"
    )
    nnt_register_max_per_ip: int = Field(
        default=10, ge=1, description="Accounts created from one IP address per window"
    )
    nnt_register_window_s: int = Field(
        default=3600, ge=1, description="Window of counted registrations per IP address"
    )
    nnt_quota_max_concurrent_runs: int = Field(
        default=4, ge=1, description="Default per-user limit of simultaneously active runs"
    )
    nnt_quota_max_memory_bytes: int = Field(
        default=8 * 1024**3, ge=1, description="Default per-user memory limit of all active runs"
    )
    nnt_max_upload_bytes: int = Field(
        default=1024**3,
        ge=1,
        description="Largest uploaded file (a dataset) of one submission; a larger one is "
        "refused with 413 before it is stored",
    )
    nnt_max_experiment_upload_bytes: int = Field(
        default=2 * 1024**3,
        ge=1,
        description="Largest sum of the files of one submission (datasets, model, "
        "configuration file); the web server refuses a larger request body before reading it",
    )
    nnt_max_model_bytes: int = Field(
        default=3 * 1024**2,
        ge=1,
        le=MAX_MESSAGE_BYTES,
        description="Largest model JSON (and configuration file) of one submission: it travels "
        "inside the `create` command, a Kafka message of at most "
        f"{MAX_MESSAGE_BYTES // 1024**2} MiB",
    )
    nnt_socket_recheck_s: float = Field(
        default=10.0,
        gt=0,
        description="How often an open WebSocket checks that its session and account are still "
        "valid (changes made in this process close sockets at once)",
    )

    @field_validator("nnt_home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("nnt_csrf_trusted_origins")
    @classmethod
    def _origins_have_scheme(cls, value: str) -> str:
        for origin in (o.strip() for o in value.split(",")):
            if origin and not origin.startswith(("http://", "https://")):
                raise ValueError(f"each origin needs its scheme, e.g. https://{origin}")
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_uri(cls, value: str) -> str:
        parse_database_url(value)
        return value

    def allowed_hosts(self) -> list[str]:
        """ALLOWED_HOSTS from the comma-separated variable."""
        return [h.strip() for h in self.nnt_allowed_hosts.split(",") if h.strip()]

    def csrf_trusted_origins(self) -> list[str]:
        """CSRF_TRUSTED_ORIGINS from the comma-separated variable."""
        return [o.strip() for o in self.nnt_csrf_trusted_origins.split(",") if o.strip()]


def load() -> WebSettings:
    """Read the environment; raise ConfigError naming the first bad variable."""
    try:
        return WebSettings()  # type: ignore[call-arg]
    except ValidationError as exc:
        name, why = variable_error(exc)
        if exc.errors()[0].get("type") == "missing":
            raise ConfigError(
                f"{name} is required (e.g. postgresql://user:pw@host:5432/nntracker)"
            ) from None
        raise ConfigError(f"{name}: {why}") from None


def parse_database_url(url: str) -> dict[str, Any]:
    """Django DATABASES entry of a postgres URI (host may also come from ?host=/socket/dir)."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError(f"must be a postgresql:// URI, got scheme {parts.scheme or 'none'!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ValueError("must name a database, e.g. postgresql://host/nntracker")
    host = query.pop("host", None) or parts.hostname or ""
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": host,
        "PORT": str(parts.port or ""),
        "OPTIONS": query,
        "CONN_MAX_AGE": 0,
    }


def private_dir(path: Path) -> Path:
    """`path` as a folder only this user may enter (mode 700), made if missing; an existing
    folder of ours that others could read is closed."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid == os.getuid() and info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def secret_key(config: WebSettings) -> str:
    """NNT_SECRET_KEY, or one generated once and kept in $NNT_HOME/secret_key (mode 600)."""
    if config.nnt_secret_key:
        return config.nnt_secret_key
    path = config.nnt_home / SECRET_FILE
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
