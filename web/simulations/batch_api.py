"""REST endpoint of batch-level points, each marked raw or reduced.

Batch points are kept raw while young and later folded into buckets of N steps
(docs/stream-processing.md): a reduced point stands for its bucket, with the bucket's min and
max and its last value, at the bucket's last step. Clients draw the two differently.

Where they are folded depends on the database's form (TimescaleDB or native partitions);
store/batches.py reads the buckets and the raw rows not folded yet in one query.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from django.db import DatabaseError, connection
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema
from pydantic import field_validator

from store import batches as store
from web.accounts.auth import API_AUTH
from web.simulations import access

log = logging.getLogger(__name__)
router = Router(tags=["simulation data"], auth=API_AUTH)
MAX_POINTS = 100_000


class BatchPointsIn(Schema):
    """Which points: one metric (none: all), an epoch range, at most `limit` points."""

    metric: str | None = Field(None, max_length=200)
    epoch_from: int = Field(0, ge=0)
    epoch_to: int = Field(2**31 - 1, ge=0)
    limit: int = Field(10_000, ge=1, le=MAX_POINTS)

    @field_validator("metric")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("remove the NUL character (\\u0000): a metric name cannot hold one")
        return value


class BatchPointOut(Schema):
    """One batch-level point: raw (`reduced` false: value at that step, min = max = value)
    or reduced (`reduced` true: last value of its bucket, the bucket's min and max)."""

    epoch: int
    step: int
    value: float | None
    min: float | None
    max: float | None
    reduced: bool


class BatchSeriesOut(Schema):
    """The batch points of one metric, in (epoch, step) order."""

    metric: str
    points: list[BatchPointOut]


class BatchPointsOut(Schema):
    """Batch points per metric; `truncated` when `limit` cut the answer short."""

    simulation_id: uuid.UUID
    truncated: bool
    metrics: list[BatchSeriesOut]


def read(simulation_id: uuid.UUID, params: BatchPointsIn) -> tuple[list[dict[str, Any]], bool]:
    """The points, grouped by metric, and whether the limit was reached."""
    try:
        with connection.cursor() as cursor:
            rows = store.read_points(
                cursor,
                simulation_id,
                params.metric,
                params.epoch_from,
                params.epoch_to,
                params.limit + 1,
            )
    except DatabaseError:
        log.warning("simulation %s: cannot read batch points", simulation_id, exc_info=True)
        return [], False
    truncated = len(rows) > params.limit
    series: dict[str, list[dict[str, Any]]] = {}
    for metric, epoch, step, value, lo, hi, reduced in rows[: params.limit]:
        series.setdefault(metric, []).append(
            {
                "epoch": epoch,
                "step": step,
                "value": value,
                "min": value if lo is None else lo,
                "max": value if hi is None else hi,
                "reduced": reduced,
            }
        )
    return [{"metric": m, "points": p} for m, p in series.items()], truncated


@router.get("/simulations/{simulation_id}/batches", response=BatchPointsOut)
def get_batches(
    request: HttpRequest, simulation_id: uuid.UUID, params: Query[BatchPointsIn]
) -> dict[str, Any]:
    """Batch-level points of one simulation, each marked raw or reduced."""
    sim = access.get_visible(request.auth, simulation_id)
    metrics, truncated = read(sim.id, params)
    return {"simulation_id": sim.id, "truncated": truncated, "metrics": metrics}
