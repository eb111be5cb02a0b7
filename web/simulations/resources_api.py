"""REST endpoints of a run's clock: its resource samples (CPU, memory, GPU) over time, and
when each logged epoch landed, both in seconds since the run began (one time axis for both).

`nnt_resource` is written by the stream workers from `nnt.resources` (the orchestrator samples
every NNT_RESOURCE_PERIOD seconds); `nnt_epoch_metric` carries the trainer's time of each epoch.
store/resources.py reads both.
"""

from __future__ import annotations

import logging
import math
import statistics
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

from django.db import DatabaseError, connection
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from store import resources as store
from web.simulations import access
from web.simulations.models import Simulation

log = logging.getLogger(__name__)
router = Router(tags=["simulation data"])
T = TypeVar("T")


class ResourcesIn(Schema):
    """How many points at most; 0: every sample."""

    max_points: int = Field(
        1000, ge=0, le=100_000, description="at most this many points (0: every sample)"
    )


class ResourcesOut(Schema):
    """Resource samples of one run, oldest first, as parallel lists.

    Over `max_points` samples, consecutive samples are merged: the mean CPU and GPU use and
    the peak memory of each span. `seconds` count from `t0`, the run's start (as on /timeline).
    """

    simulation_id: uuid.UUID
    t0: datetime | None = Field(description="when the run began: time zero of `seconds`")
    samples: int = Field(description="samples stored (before merging)")
    has_gpu: bool = Field(description="whether any sample carries GPU use")
    seconds: list[float]
    cpu_percent: list[float]
    memory_bytes: list[int]
    memory_limit_bytes: list[int | None]
    gpu_percent: list[float | None]
    gpu_memory_bytes: list[int | None]


class TimelineOut(Schema):
    """When each logged epoch landed, and the training steps (batches) per epoch."""

    simulation_id: uuid.UUID
    t0: datetime | None = Field(description="when the run began: time zero of `seconds`")
    epochs: list[int]
    seconds: list[float]
    steps_per_epoch: int | None = Field(
        description="batches per epoch (training samples / batch size); null when unknown"
    )


def _read(read: Callable[..., T], sim: Simulation, what: str, *args: Any, empty: T) -> T:
    """What a store read of the run answers; `empty` when its table is not there yet."""
    try:
        with connection.cursor() as cursor:
            return read(cursor, sim.id, *args)
    except DatabaseError:
        log.warning("simulation %s: cannot read %s", sim.id, what, exc_info=True)
        return empty


def start_of(sim: Simulation) -> datetime | None:
    """Time zero of a run: the earliest of its start, first resource sample and first epoch."""
    first = _read(store.read_first, sim, "the first samples", empty=())
    found = [t for t in (sim.started_at, *first) if t is not None]
    return min(found) if found else None


def _seconds(at: datetime, t0: datetime | None) -> float:
    return round((at - t0).total_seconds(), 3) if t0 else 0.0


def resources(sim: Simulation, max_points: int) -> dict[str, Any]:
    """The run's samples, merged down to `max_points` (0: all)."""
    rows = _read(store.read_samples, sim, "nnt_resource", max_points, empty=[])
    t0 = start_of(sim)
    cols: dict[str, list[Any]] = {
        k: []
        for k in ("seconds", "cpu_percent", "memory_bytes", "memory_limit_bytes")
        + ("gpu_percent", "gpu_memory_bytes")
    }
    for at, cpu, mem, limit, gpu, gpu_mem, _ in rows:
        cols["seconds"].append(_seconds(at, t0))
        cols["cpu_percent"].append(round(float(cpu), 3))
        cols["memory_bytes"].append(int(mem))
        cols["memory_limit_bytes"].append(None if limit is None else int(limit))
        cols["gpu_percent"].append(None if gpu is None else round(float(gpu), 3))
        cols["gpu_memory_bytes"].append(None if gpu_mem is None else int(gpu_mem))
    has_gpu = any(v is not None for v in cols["gpu_percent"] + cols["gpu_memory_bytes"])
    samples = sum(int(r.samples) for r in rows)
    return {"simulation_id": sim.id, "t0": t0, "samples": samples, "has_gpu": has_gpu, **cols}


def batch_size(sim: Simulation) -> int | None:
    """The run's batch size, from its plan or its experiment's configuration."""
    plan = sim.config or {}
    exp = (sim.experiment.config if sim.experiment else None) or {}
    value = plan.get("batch_size") or exp.get("batch_size")
    return int(value) if isinstance(value, int | float) and value > 0 else None


def steps_per_epoch(sim: Simulation) -> int | None:
    """Batches per epoch: the samples an epoch trained on (throughput x epoch time, as the
    trainer measured them) over the batch size; None when either is unknown."""
    size = batch_size(sim)
    if size is None:
        return None
    found = _read(store.read_epoch_samples, sim, "throughput", empty=[])
    samples = [v for v in found if v is not None and math.isfinite(v) and v > 0]
    if not samples:
        return None
    return max(1, math.ceil(round(statistics.median(samples)) / size))


def timeline(sim: Simulation) -> dict[str, Any]:
    """Each logged epoch's time since the run began, and the steps per epoch."""
    t0 = start_of(sim)
    rows = _read(store.read_epoch_times, sim, "nnt_epoch_metric", empty=[])
    return {
        "simulation_id": sim.id,
        "t0": t0,
        "epochs": [int(e) for e, _ in rows],
        "seconds": [_seconds(at, t0) for _, at in rows],
        "steps_per_epoch": steps_per_epoch(sim),
    }


@router.get("/simulations/{simulation_id}/resources", response=ResourcesOut)
def get_resources(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[ResourcesIn]
) -> dict[str, Any]:
    """CPU %, memory and GPU use of the run's process or container over time."""
    sim = access.get_visible(request.auth, simulation_id)
    return resources(sim, params.max_points)


@router.get("/simulations/{simulation_id}/timeline", response=TimelineOut)
def get_timeline(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """When each logged epoch landed (seconds since the run began) and the steps per epoch:
    what a chart needs to draw metrics against wall time or training steps."""
    sim = access.get_visible(request.auth, simulation_id)
    return timeline(sim)
