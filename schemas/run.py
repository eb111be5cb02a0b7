"""The run specification the orchestrator hands a trainer (`RUN_DIR/run.json`)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from schemas.common import Event
from schemas.experiment import ExperimentConfig, SimulationPlan

RUN_SPEC_FILE = "run.json"
CHECK_FILE = "check.json"  # what a `check` run writes: {"errors": {...}, "notes": [...]}


class DatasetPaths(Event):
    """Local files of the datasets, already fetched and content-addressed."""

    train: str
    test: str | None = None
    val: str | None = None


class RunSpec(Event):
    """Everything one training run needs; the trainer reads nothing else."""

    simulation_id: uuid.UUID
    experiment_id: uuid.UUID | None = None
    name: str
    owner: str = ""
    owner_id: int | None = Field(default=None, description="the owning account's id")
    config: ExperimentConfig
    plan: SimulationPlan
    model: dict[str, Any] = Field(description="Keras model JSON (Keras 3 or tf.keras 2.x)")
    datasets: DatasetPaths
    kafka_bootstrap: str = "127.0.0.1:9092"
    allow_pickle: bool = False
    seed: int = 1234
    # Set by the orchestrator when it starts the run (orchestrator/rules.py run_resources):
    # the host's limits, lowered to the owner's per-run limits. None: the host's settings.
    memory_bytes: int | None = Field(
        default=None, ge=1, description="memory limit of this run; None: NNT_RUN_MEMORY_BYTES"
    )
    cpus: float | None = Field(
        default=None, gt=0, description="CPUs of this run; None: NNT_RUN_CPUS"
    )
    mode: Literal["train", "check"] = Field(
        default="train",
        description="`check`: pre-flight every optimizer/loss combination of `config` on one "
        "batch and write CHECK_FILE instead of training",
    )
