"""Batch-level points of a run, read from `nnt_batch_metric` and `nnt_batch_bucket`.

The stream workers write them (store/sql/timeseries.sql and timescale.sql create them);
nothing here writes them. Batch points are kept raw while young and later folded into buckets
of N steps (docs/stream-processing.md): a reduced point stands for its bucket, with the
bucket's min and max and its last value, at the bucket's last step.

Where they are folded depends on the database's form (infra/timeseries.py): natively
partitioned, the stream workers replace the raw rows of `nnt_batch_metric` by reduced ones
(`reduced = true`); on TimescaleDB, the raw rows stay until a retention policy drops them and
the continuous aggregate `nnt_batch_bucket` holds the buckets (an empty view on native
tables). One query reads both: the buckets, and the raw rows of every event not folded yet.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

# A raw row is left out once its event (simulation, metric, epoch, `at`) has buckets: the
# aggregate folds all the rows of an event in one refresh, and a row arriving after it (a
# replay) is one of them again. Events not refreshed yet (young, or late) are read raw.
# Then the newest row per (metric, epoch, step): a resumed epoch shows its re-run; a raw point
# replayed beside its bucket yields to the bucket's reduced row until the next pass folds it.
POINTS_SQL = """
WITH buckets AS MATERIALIZED (
    SELECT metric, epoch, step, value, value_min, value_max, at
    FROM nnt_batch_bucket
    WHERE simulation_id = %(sid)s
      AND (%(metric)s::text IS NULL OR metric = %(metric)s::text)
      AND epoch BETWEEN %(first)s AND %(last)s
)
SELECT DISTINCT ON (metric, epoch, step) metric, epoch, step, value, value_min, value_max,
       reduced
FROM (
    SELECT metric, epoch, step, value, value_min, value_max, true AS reduced, at FROM buckets
    UNION ALL
    SELECT r.metric, r.epoch, r.step, r.value, r.value_min, r.value_max, r.reduced, r.at
    FROM nnt_batch_metric r
    WHERE r.simulation_id = %(sid)s
      AND (%(metric)s::text IS NULL OR r.metric = %(metric)s::text)
      AND r.epoch BETWEEN %(first)s AND %(last)s
      AND NOT EXISTS (SELECT 1 FROM buckets b
                      WHERE b.metric = r.metric AND b.epoch = r.epoch AND b.at = r.at)
) AS points
ORDER BY metric, epoch, step, reduced DESC, at DESC
LIMIT %(limit)s
"""


class BatchRow(NamedTuple):
    """One batch-level point: raw (`reduced` false; min and max unset) or a bucket's."""

    metric: str
    epoch: int
    step: int
    value: float | None
    value_min: float | None
    value_max: float | None
    reduced: bool


def read_points(
    cursor: DBAPICursor,
    simulation_id: uuid.UUID,
    metric: str | None,
    first: int,
    last: int,
    limit: int,
) -> list[BatchRow]:
    """At most `limit` points of one metric (None: all) in epochs first..last, by metric,
    epoch and step."""
    args = {"sid": simulation_id, "metric": metric, "first": first, "last": last, "limit": limit}
    cursor.execute(POINTS_SQL, args)
    return [BatchRow(*row) for row in cursor.fetchall()]
