"""Lifecycle transitions, progress and errors on `nnt.status` (plain JSON)."""

from __future__ import annotations

import math
import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from schemas.common import Epoch, Event, utcnow
from schemas.diagnosis import Problem

Status = Literal[
    "queued",
    "starting",
    "running",
    "paused",
    "stopped",
    "finished",
    "failed",
    "deleted",
    "accepted",
    "rejected",
]
TERMINAL: frozenset[str] = frozenset({"stopped", "finished", "failed", "deleted"})
ACTIVE: frozenset[str] = frozenset({"queued", "starting", "running", "paused"})
# In RUN_DIR: the `stopped` event a trainer published when the early-stop rule ended its run,
# so the orchestrator records that stop instead of announcing a plain one of its own.
EARLY_STOP_FILE = "early_stop.json"


class EarlyStop(Event):
    """Why the experiment's early-stop rule ended a run, and the epochs it did not run."""

    problem: Problem
    title: str = Field(max_length=200)
    summary: str = Field(default="", max_length=500)
    epoch: Epoch = Field(description="the last epoch trained")
    total_epochs: int = Field(ge=0)
    saved_epochs: int = Field(ge=0, description="total_epochs - epoch: the epochs not run")


class StatusEvent(Event):
    """One transition of a simulation, or the answer to a command.

    `accepted`/`rejected` answer a command and name its `command_id`; the other statuses
    are lifecycle transitions. The optional descriptive fields let a run created outside
    the web (a Kafka client, the SDK) appear in the UI like any other.
    """

    simulation_id: uuid.UUID | None = None
    status: Status
    epoch: Epoch = 0
    total_epochs: int = Field(default=0, ge=0)
    message: str = ""
    at: datetime = Field(default_factory=utcnow)
    command_id: uuid.UUID | None = None
    experiment_id: uuid.UUID | None = None
    name: str | None = None
    owner: str | None = None
    owner_id: int | None = Field(default=None, description="the owning account's id")
    tags: list[str] | None = None
    config: dict[str, Any] | None = None
    metrics: dict[str, float] | None = Field(
        default=None, description="Final test-set metrics, on the `finished` event"
    )
    detail: str | None = Field(
        default=None,
        description="On `failed`: the full error (traceback) behind the one-line `message`",
    )
    errors: dict[str, str] | None = Field(
        default=None, description="On a rejected `check`: field path -> what is wrong and the fix"
    )
    notes: list[str] | None = Field(
        default=None,
        description="On an answered `check`: what was adapted (label encoding, scaling, ...)",
    )
    early_stop: EarlyStop | None = Field(
        default=None,
        description="On a `stopped` event of the early-stop rule: the diagnosis that ended it",
    )
    source: str = ""

    @field_validator("metrics", mode="before")
    @classmethod
    def _finite_metrics(cls, value: Any) -> Any:
        """JSON has no NaN: a diverged run's NaN test loss goes out as null, and would make
        the `finished` event unreadable. Non-finite metrics are dropped (the message still
        says `loss=nan`)."""
        if not isinstance(value, dict):
            return value
        return {
            k: v
            for k, v in value.items()
            if v is not None and not (isinstance(v, float) and not math.isfinite(v))
        }
