"""Orchestrator configuration, read once from the environment (fails fast on bad values)."""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class OrchestratorError(RuntimeError):
    """Base of the orchestrator's errors; the text is shown to users as a status message."""


class OrchestratorSettings(BaseSettings):
    """Every setting of one orchestrator process."""

    model_config = SettingsConfigDict(extra="ignore")

    nnt_kafka_bootstrap: str = "127.0.0.1:9092"
    nnt_home: Path = Path("~/.local/share/nntracker")
    nnt_runtime: str = Field(default="process", description="process | docker")
    nnt_orchestrator_group: str = Field(
        default="nntracker-orchestrator", description="consumer group"
    )
    nnt_max_runs: int = Field(default=2, ge=1, description="concurrent runs on this host")
    nnt_trainer_python: str = Field(default=sys.executable, description="Python that runs trainers")
    nnt_allow_pickle: bool = Field(default=False, description="let trainers load pandas pickles")

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

    @property
    def runs_dir(self) -> Path:
        """Run directories, one per simulation."""
        return self.nnt_home / "runs"

    @property
    def datasets_dir(self) -> Path:
        """Content-addressed dataset store shared with the web."""
        return self.nnt_home / "datasets"


def load() -> OrchestratorSettings:
    """Read settings or raise OrchestratorError naming the variable."""
    try:
        return OrchestratorSettings()
    except ValidationError as exc:
        err = exc.errors()[0]
        raise OrchestratorError(f"{str(err['loc'][0]).upper()}: {err['msg']}") from exc
