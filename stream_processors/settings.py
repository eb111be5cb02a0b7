"""Environment configuration of the stream processors, read once at start (fails fast)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import SettingsConfigDict

from schemas.auth import CommandSecretSetting
from schemas.common import variable_error
from schemas.downsampling import DownsamplingSetting
from schemas.kafkaauth import KafkaSecurity
from stream_processors.errors import ConfigError


class StreamSettings(KafkaSecurity, CommandSecretSetting, DownsamplingSetting):
    """Every setting of the worker, typed and documented where it is declared (the Kafka
    security ones in schemas.kafkaauth)."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    nnt_kafka_bootstrap: str = Field(
        default="127.0.0.1:9092", description="host:port of the broker"
    )
    database_url: str = Field(description="PostgreSQL URL of the time-series tables (required)")
    nnt_home: Path = Field(
        default=Path("~/.local/share/nntracker"), description="Faust data under $NNT_HOME/faust"
    )
    nnt_stream_batch_size: int = Field(
        default=5000,
        ge=1,
        le=100_000,
        description="most events per DB write: one transaction (and one fsync) per batch, so "
        "large batches carry the ingest rate; a quiet stream writes every batch_within",
    )
    nnt_stream_batch_within: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="seconds a partial batch waits (part of the live latency: under load "
        "batches fill by size first)",
    )
    nnt_stream_batch_idle: float = Field(
        default=0.01,
        gt=0,
        le=60,
        description="seconds without a new event after which a partial batch is written "
        "(a lone epoch waits this long, not batch_within)",
    )
    nnt_live_rate: float = Field(
        default=10.0, gt=0, le=1000, description="max nnt.live messages/s per simulation"
    )
    nnt_db_retry_max_s: float = Field(
        default=30.0, gt=0, description="longest back-off between DB retries"
    )
    # Downsampling and retention (docs/stream-processing.md). The four after the period act
    # here on native tables only; on TimescaleDB the schema set-up reads the same variables
    # (schemas.downsampling declares them once) and the database acts.
    nnt_full_tensor_period: int = Field(
        default=1,
        ge=1,
        description="keep full tensor values of epochs that are multiples of N (stats always)",
    )
    nnt_maintenance_interval_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="seconds between downsampling/retention passes (native tables only)",
    )
    nnt_stream_report_s: float = Field(
        default=60.0,
        gt=0,
        le=86400,
        description="seconds between log lines counting the events this worker stored, per "
        "topic and partition",
    )
    nnt_tag_cache_s: float = Field(
        default=30.0,
        ge=0,
        description="seconds a simulation's tags read from the database are trusted",
    )
    nnt_partition_check_s: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="seconds between checks that every assigned partition is read "
        "(stream_processors/liveness.py)",
    )
    nnt_stall_checks: int = Field(
        default=6,
        ge=2,
        le=1000,
        description="checks in a row a partition may stand still with messages waiting "
        "before it is sought back to its committed offset",
    )
    nnt_stream_replication_factor: int = Field(
        default=1,
        ge=1,
        le=16,
        description="replicas of the worker's own topics (table changelogs, tag points): "
        "3 on a production cluster",
    )

    @field_validator("nnt_home")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("nnt_kafka_bootstrap")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError("must be host:port, e.g. 127.0.0.1:9092")
        return value

    @property
    def datadir(self) -> Path:
        """Faust's data directory."""
        return self.nnt_home / "faust"

    @property
    def live_interval(self) -> float:
        """Seconds between two nnt.live messages of one simulation."""
        return 1.0 / self.nnt_live_rate


def load() -> StreamSettings:
    """Read the environment; raise ConfigError naming the bad variable."""
    try:
        return StreamSettings()  # type: ignore[call-arg]
    except ValidationError as exc:
        name, why = variable_error(exc)
        raise ConfigError(f"{name}: {why}") from exc
