"""A run's clock and resource use: reads of `nnt_resource` and of when epochs landed.

`nnt_resource` holds the resource samples of each run (CPU, memory, GPU), written by the
stream workers from `nnt.resources` (the orchestrator samples every NNT_RESOURCE_PERIOD
seconds); `nnt_epoch_metric` carries the trainer's time of each epoch and its throughput.
store/sql/timeseries.sql creates both; nothing here writes them.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

ALL = 2**31 - 1  # ntile() with more buckets than rows: one bucket per row

# Buckets of consecutive samples: the mean of the percentages, the peak of the memory (what
# runs a process out of memory is its peak, never its mean), at the middle of the bucket.
SAMPLES_SQL = """
WITH s AS (
    SELECT at, cpu_percent, memory_bytes, memory_limit_bytes, gpu_percent, gpu_memory_bytes,
           ntile(%(buckets)s) OVER (ORDER BY at) AS bucket
    FROM nnt_resource WHERE simulation_id = %(sid)s
)
SELECT min(at) + (max(at) - min(at)) / 2, avg(cpu_percent), max(memory_bytes),
       max(memory_limit_bytes), avg(gpu_percent), max(gpu_memory_bytes), count(*)
FROM s GROUP BY bucket ORDER BY bucket
"""
# The newest row of an epoch counts (a resumed epoch shows when its re-run ended).
EPOCH_TIMES_SQL = """
SELECT epoch, max(at) FROM nnt_epoch_metric WHERE simulation_id = %s GROUP BY epoch ORDER BY epoch
"""
EPOCH_SAMPLES_SQL = """
SELECT s.value * t.value FROM nnt_epoch_metric s
JOIN nnt_epoch_metric t ON t.simulation_id = s.simulation_id AND t.epoch = s.epoch
WHERE s.simulation_id = %s AND s.metric = 'samples_per_s' AND t.metric = 'epoch_time_s'
"""
FIRST_SQL = """
SELECT (SELECT min(at) FROM nnt_resource WHERE simulation_id = %(sid)s),
       (SELECT min(at) FROM nnt_epoch_metric WHERE simulation_id = %(sid)s)
"""
# The newest sample of each of the runs, summed (the admin console's use of a user's runs).
LATEST_SUM_SQL = """
SELECT sum(cpu_percent), sum(memory_bytes), sum(memory_limit_bytes), sum(gpu_percent),
       sum(gpu_memory_bytes), count(*), min(at)
FROM (SELECT DISTINCT ON (simulation_id) *
      FROM nnt_resource WHERE simulation_id = ANY(%s)
      ORDER BY simulation_id, at DESC) AS latest
"""


class Bucket(NamedTuple):
    """Consecutive samples merged: mean CPU and GPU use, peak memory, at the span's middle."""

    at: datetime
    cpu_percent: float
    memory_bytes: int
    memory_limit_bytes: int | None
    gpu_percent: float | None
    gpu_memory_bytes: int | None
    samples: int


class EpochTime(NamedTuple):
    """When an epoch landed (its newest row)."""

    epoch: int
    at: datetime


class LatestSum(NamedTuple):
    """The newest sample of each of some runs, summed; None where no sample has the value."""

    cpu_percent: float | None
    memory_bytes: int | None
    memory_limit_bytes: int | None
    gpu_percent: float | None
    gpu_memory_bytes: int | None
    runs: int
    oldest: datetime | None


def read_samples(cursor: DBAPICursor, simulation_id: uuid.UUID, buckets: int) -> list[Bucket]:
    """A run's samples in at most `buckets` spans of consecutive samples (0: one per sample)."""
    cursor.execute(SAMPLES_SQL, {"sid": simulation_id, "buckets": buckets or ALL})
    return [Bucket(*row) for row in cursor.fetchall()]


def read_epoch_times(cursor: DBAPICursor, simulation_id: uuid.UUID) -> list[EpochTime]:
    """When each logged epoch landed, by epoch."""
    cursor.execute(EPOCH_TIMES_SQL, [simulation_id])
    return [EpochTime(*row) for row in cursor.fetchall()]


def read_epoch_samples(cursor: DBAPICursor, simulation_id: uuid.UUID) -> list[float | None]:
    """The samples each epoch trained on, as the trainer measured them (throughput x time)."""
    cursor.execute(EPOCH_SAMPLES_SQL, [simulation_id])
    return [row[0] for row in cursor.fetchall()]


def read_first(
    cursor: DBAPICursor, simulation_id: uuid.UUID
) -> tuple[datetime | None, datetime | None]:
    """When the run's first resource sample and its first epoch landed (None: none yet)."""
    cursor.execute(FIRST_SQL, {"sid": simulation_id})
    row = cursor.fetchone()
    return (row[0], row[1]) if row else (None, None)


def latest_sum(cursor: DBAPICursor, simulation_ids: Sequence[uuid.UUID]) -> LatestSum:
    """The newest sample of each of these runs, summed."""
    cursor.execute(LATEST_SUM_SQL, [list(simulation_ids)])
    row = cursor.fetchone()
    return LatestSum(*row) if row else LatestSum(None, None, None, None, None, 0, None)
