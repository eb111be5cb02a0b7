"""Environment configuration of the local stack, read once and validated (fails fast)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from schemas.common import variable_error
from schemas.kafkaauth import KafkaSecurity


class InfraError(RuntimeError):
    """Base of every provisioning and CLI error; its text tells the user the fix."""


class TimescaleSettings(BaseSettings):
    """Whether and how the time-series tables use TimescaleDB. Read on their own by
    infra.timescale (the build) and infra.timeseries (the schema), which also run outside
    `nntracker up` (the compose `provision` service, the tests, the benchmarks)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    nnt_timescaledb: Literal["auto", "on", "off"] = Field(
        default="auto",
        description="auto: TimescaleDB when it can be built (embedded PostgreSQL) or loaded "
        "(DATABASE_URL), else native partitioning; on: a missing TimescaleDB is an error "
        "(`make test`, CI); off: native partitioning",
    )
    nnt_timescaledb_source: Path | None = Field(
        default=None,
        description="TimescaleDB source tarball built for the embedded PostgreSQL; unset: "
        "the newest ../shared/vendor/timescaledb-*.tar.gz beside the repository",
    )
    nnt_tensor_payload_retention_days: float = Field(
        default=180.0,
        ge=0,
        description="TimescaleDB: full tensor values older than this are dropped, statistics "
        "and histograms kept (0: kept for ever)",
    )
    nnt_resource_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="TimescaleDB: CPU/memory samples older than this are dropped with their "
        "chunks (0: kept for ever)",
    )

    @field_validator("nnt_timescaledb_source")
    @classmethod
    def _expand_source(cls, value: Path | None) -> Path | None:
        return value.expanduser().resolve() if value else None


class StackSettings(KafkaSecurity, TimescaleSettings):
    """The variables of ../shared/DESIGN.md plus the embedded PostgreSQL port (and the Kafka
    client security of every component, which `nntracker up` passes on to them)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    nnt_kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="host:port of the broker"
    )
    database_url: str | None = Field(default=None, description="unset: embedded PostgreSQL")
    nnt_home: Path = Field(
        default=Path("~/.local/share/nntracker"),
        description="data: Kafka log, PostgreSQL, datasets, run directories, secrets",
    )
    nnt_runtime: str = Field(default="process", description="process | docker")
    nnt_web_port: int = Field(
        default=8000, ge=1, le=65535, description="web UI, REST API and WebSockets"
    )
    nnt_pg_port: int = Field(default=55432, ge=1, le=65535, description="embedded PostgreSQL port")

    @field_validator("nnt_home")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("nnt_runtime")
    @classmethod
    def _runtime(cls, value: str) -> str:
        if value not in ("process", "docker"):
            raise ValueError("must be 'process' or 'docker'")
        return value

    @field_validator("nnt_kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. 127.0.0.1:9092")
        return value

    @property
    def kafka_port(self) -> int:
        """Port of the local broker, taken from the bootstrap address."""
        return int(self.nnt_kafka_bootstrap.rpartition(":")[2])


def load_timescale() -> TimescaleSettings:
    """Read the TimescaleDB variables alone; raise InfraError naming a bad one."""
    try:
        return TimescaleSettings()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise InfraError(f"{name}: {why}") from exc


def load() -> StackSettings:
    """Read the environment; raise InfraError naming the bad variable."""
    try:
        settings = StackSettings()
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise InfraError(f"{name}: {why}") from exc
    settings.nnt_home.mkdir(mode=0o700, parents=True, exist_ok=True)  # a new one is private
    return settings
