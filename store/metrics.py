"""Epoch metrics of the runs, read from `nnt_epoch_metric`: every statement the web reads them with.

The stream workers write the table (store/sql/timeseries.sql creates it); nothing here writes
it. A row is one logged value of one metric at one epoch, at the event's time `at`: a resumed
or replayed epoch adds a row, and the newest row of an epoch is the one that counts.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

# Each metric's (epoch, value) rows packed by PostgreSQL into one bytea (big-endian int4 +
# float8 per row, in primary-key order: oldest first within an epoch), which numpy reads in
# one call: a 100,000-epoch series crosses as one value, not 100,000 rows.
PACKED_SQL = """
SELECT metric,
       string_agg(int4send(epoch) || float8send(coalesce(value, 'NaN'::float8)), ''::bytea
                  ORDER BY epoch, at)
FROM nnt_epoch_metric WHERE simulation_id = %s GROUP BY metric
"""
SINCE_SQL = """
SELECT DISTINCT ON (epoch, metric) epoch, metric, value
FROM nnt_epoch_metric
WHERE simulation_id = %s AND epoch > %s
ORDER BY epoch, metric, at DESC
LIMIT %s
"""
# Aggregated on read over the given runs (latest value per epoch), so a tag group never mixes
# in other users' runs and always agrees with the stored epochs.
GROUP_SQL = """
WITH latest AS (
    SELECT DISTINCT ON (m.simulation_id, m.metric, m.epoch) m.metric, m.epoch, m.value
    FROM nnt_epoch_metric m
    WHERE m.simulation_id = ANY(%s)
    ORDER BY m.simulation_id, m.metric, m.epoch, m.at DESC
)
SELECT metric, epoch, count(value), avg(value), min(value), max(value), stddev_pop(value)
FROM latest
WHERE value IS NOT NULL
GROUP BY metric, epoch
ORDER BY metric, epoch
"""
COUNTS_SQL = """
SELECT count(DISTINCT epoch), count(DISTINCT metric) FROM nnt_epoch_metric
WHERE simulation_id = %s
"""


class Packed(NamedTuple):
    """One metric's rows as PACKED_SQL packs them: (>i4 epoch, >f8 value) per row."""

    metric: str
    data: bytes


class Point(NamedTuple):
    """The newest value of one metric at one epoch."""

    epoch: int
    metric: str
    value: float | None


class GroupPoint(NamedTuple):
    """One metric at one epoch over a group of runs (their latest non-null values)."""

    metric: str
    epoch: int
    runs: int  # the runs with a value at this epoch
    mean: float
    min: float
    max: float
    std: float


class Counts(NamedTuple):
    """How many epochs and metric names a run logged."""

    epochs: int
    metrics: int


def read_packed(cursor: DBAPICursor, simulation_id: uuid.UUID) -> list[Packed]:
    """Every logged metric of one run, packed, by metric name."""
    cursor.execute(PACKED_SQL, [simulation_id])
    rows = sorted(cursor.fetchall(), key=lambda row: str(row[0]))
    return [Packed(metric, bytes(data)) for metric, data in rows]


def read_since(
    cursor: DBAPICursor, simulation_id: uuid.UUID, since: int, limit: int
) -> list[Point]:
    """The newest value of each metric at each epoch after `since`, at most `limit`, by epoch."""
    cursor.execute(SINCE_SQL, [simulation_id, since, limit])
    return [Point(*row) for row in cursor.fetchall()]


def read_group(cursor: DBAPICursor, simulation_ids: Sequence[uuid.UUID]) -> list[GroupPoint]:
    """Count, mean, min, max and population std of each metric at each epoch over these runs."""
    cursor.execute(GROUP_SQL, [list(simulation_ids)])
    return [GroupPoint(*row) for row in cursor.fetchall()]


def count(cursor: DBAPICursor, simulation_id: uuid.UUID) -> Counts:
    """How many epochs and metric names a run logged."""
    cursor.execute(COUNTS_SQL, [simulation_id])
    row = cursor.fetchone()
    return Counts(int(row[0]), int(row[1])) if row else Counts(0, 0)
