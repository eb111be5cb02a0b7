"""CPU, memory and GPU samples per simulation on `nnt.resources`."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from schemas.common import Event, utcnow


class ResourceSample(Event):
    """One resource sample of one simulation's process or container."""

    simulation_id: uuid.UUID
    at: datetime = Field(default_factory=utcnow)
    cpu_percent: float = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    memory_limit_bytes: int | None = None
    gpu_percent: float | None = None
    gpu_memory_bytes: int | None = None
