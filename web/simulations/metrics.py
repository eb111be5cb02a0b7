"""Epoch metrics of a simulation, read from `nnt_epoch_metric` (written by the stream processors)."""

from __future__ import annotations

import logging
import uuid

from django.db import DatabaseError, connection

log = logging.getLogger(__name__)
Series = dict[str, dict[str, list]]

# Latest value per (metric, epoch): a replayed or resumed epoch shows its newest value.
SQL = """
SELECT DISTINCT ON (metric, epoch) metric, epoch, value
FROM nnt_epoch_metric
WHERE simulation_id = %s
ORDER BY metric, epoch, at DESC
"""


def downsample_indexes(n: int, max_points: int | None) -> list[int]:
    """Evenly spaced indexes of n points, keeping the first and the last."""
    if max_points is None or n <= max_points:
        return list(range(n))
    if max_points <= 1:
        return [n - 1] if max_points == 1 else []
    step = (n - 1) / (max_points - 1)
    return sorted({round(i * step) for i in range(max_points)})


def group(rows: list[tuple[str, int, float | None]], max_points: int | None = None) -> Series:
    """Rows ordered by metric and epoch into `{metric: {"epochs": [...], "values": [...]}}`."""
    out: Series = {}
    for metric, epoch, value in rows:
        series = out.setdefault(metric, {"epochs": [], "values": []})
        series["epochs"].append(epoch)
        series["values"].append(value)
    for series in out.values():
        keep = downsample_indexes(len(series["epochs"]), max_points)
        series["epochs"] = [series["epochs"][i] for i in keep]
        series["values"] = [series["values"][i] for i in keep]
    return out


def read(simulation_id: uuid.UUID, max_points: int | None = None) -> Series:
    """Every logged epoch metric of one simulation; empty if the table is not there yet."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(SQL, [simulation_id])
            rows = cursor.fetchall()
    except DatabaseError:
        log.warning("cannot read nnt_epoch_metric for simulation %s", simulation_id, exc_info=True)
        return {}
    return group(rows, max_points)
