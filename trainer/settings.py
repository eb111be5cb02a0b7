"""Trainer settings read once from the environment (NNT_TRAINER_*, NNT_RUN_KEY), with local
defaults."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class TrainerSettings(BaseSettings):
    """Operator limits that protect the machine from oversized models and datasets."""

    model_config = SettingsConfigDict(env_prefix="NNT_TRAINER_")

    max_params: int = Field(default=50_000_000, ge=1, description="Largest model, in parameters")
    max_dataset_bytes: int = Field(
        default=4 * 1024**3, ge=1, description="Largest decoded dataset file, in bytes"
    )
    max_layer_output: int = Field(
        default=50_000_000, ge=1, description="Largest output of one layer, in values per sample"
    )
    log_level: str = Field(default="INFO", description="Logging level of the trainer process")
    dataset_links: dict[str, str] = Field(
        default_factory=dict,
        description="set by the orchestrator when the trainer runs as another user: stored "
        "dataset path -> a link in the run directory to the file it opened for the trainer "
        "(orchestrator/identity.py)",
    )
    run_key: str = Field(
        default="",
        validation_alias="NNT_RUN_KEY",
        description="the run's event key: every event is signed with it (Kafka header nnt-sig) "
        "and the stream workers store only signed ones. The orchestrator sets it for the runs "
        "it starts; an SDK script gets it from POST /api/sdk-runs (docs/sdk.md)",
    )

    def dataset_path(self, path: str) -> str:
        """Where the trainer reads a stored dataset: its link when the orchestrator made one."""
        return self.dataset_links.get(path, path)


def load_settings() -> TrainerSettings:
    """Settings from the environment; a bad value raises naming the variable."""
    return TrainerSettings()
