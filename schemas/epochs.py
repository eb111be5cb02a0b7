"""Metrics of one logged epoch on `nnt.epochs`."""

from __future__ import annotations

import math
import uuid
from datetime import datetime

from pydantic import Field, field_validator

from schemas.common import Epoch, Event, utcnow
from schemas.diagnosis import Diagnosis, Evidence


class BatchPoint(Event):
    """One batch-level point inside an epoch (optional, for fine-grained loss curves)."""

    step: int = Field(ge=0)
    metrics: dict[str, float]


class EpochEvent(Event):
    """All Keras logs of one epoch plus learning rate and throughput."""

    simulation_id: uuid.UUID
    epoch: Epoch
    total_epochs: int = Field(ge=0)
    metrics: dict[str, float | None]
    learning_rate: float | None = None
    epoch_time_s: float | None = None
    samples_per_s: float | None = None
    at: datetime = Field(default_factory=utcnow)
    batches: list[BatchPoint] = Field(default_factory=list)
    evidence: Evidence | None = Field(
        default=None, description="per-layer and loss-curve evidence (schemas/diagnosis.py)"
    )
    diagnoses: list[Diagnosis] | None = Field(
        default=None,
        description="the problems present at this epoch; [] healthy, null not diagnosed",
    )

    @field_validator("metrics")
    @classmethod
    def _finite_or_none(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        """JSON has no NaN/inf: carry them as null so any client can read the event."""
        return {k: (v if v is None or math.isfinite(v) else None) for k, v in value.items()}

    def points(self) -> dict[str, float]:
        """Every numeric series of this epoch, learning rate and timings included."""
        out = {k: v for k, v in self.metrics.items() if v is not None}
        for name in ("learning_rate", "epoch_time_s", "samples_per_s"):
            value = getattr(self, name)
            if value is not None and math.isfinite(value):
                out[name] = value
        return out
