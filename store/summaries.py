"""Per-run summaries the runs table sorts and filters on, kept by the stream workers.

`nnt_run_metric` holds one row per (simulation, epoch metric): the value at the highest
epoch (`last`, ties broken by the later event time), the lowest and highest values with
their epochs, and whether the metric was ever non-finite. `nnt_run_health` holds one row per
simulation: the distinct tensor health flags of its latest epoch with tensors, and whether
any epoch metric was non-finite. Both tables are created by store/sql/timeseries.sql.

Every statement here is a merge keyed by simulation: a batch folds into the row whatever
came before it, in any order and any number of times, with the same result. The workers run
them in the transaction that writes the rows they summarise (stream_processors/agents.py),
and the same merges over the stored rows fill the tables once (`backfill`). The deletion of
a simulation removes its rows from both tables (store/deletion.py).
"""

from __future__ import annotations

from typing import Any

import psycopg

TABLES = ("nnt_run_metric", "nnt_run_health")
# Set as the table's comment once the backfill committed: a later start does not redo it.
FILLED = "summaries filled from the stored rows"

# A batch's summary rows, folded from its epochs by stream_processors.rows.metric_summaries
# (a batch of 5000 events sends about a row per run and metric, not one per point).
METRIC_SUMMARIES = (
    "unnest(%s::uuid[], %s::text[], %s::float8[], %s::int4[], %s::timestamptz[], "
    "%s::float8[], %s::int4[], %s::float8[], %s::int4[], %s::bool[]) AS r(simulation_id, "
    "metric, last, last_epoch, last_at, best_min, min_epoch, best_max, max_epoch, nonfinite)"
)
# The same rows from the stored epoch metrics.
STORED_METRICS = """(
    SELECT simulation_id, metric,
           (array_agg(value ORDER BY epoch DESC, at DESC) FILTER (WHERE ok))[1] AS last,
           max(epoch) FILTER (WHERE ok) AS last_epoch,
           (array_agg(at ORDER BY epoch DESC, at DESC) FILTER (WHERE ok))[1] AS last_at,
           min(value) FILTER (WHERE ok) AS best_min,
           (array_agg(epoch ORDER BY value, epoch) FILTER (WHERE ok))[1] AS min_epoch,
           max(value) FILTER (WHERE ok) AS best_max,
           (array_agg(epoch ORDER BY value DESC, epoch) FILTER (WHERE ok))[1] AS max_epoch,
           bool_or(NOT ok) AS nonfinite
    FROM (SELECT simulation_id, metric, epoch, value, at,
                 value IS NOT NULL AND value NOT IN ('NaN', 'Infinity', '-Infinity') AS ok
          FROM nnt_epoch_metric) AS points
    GROUP BY simulation_id, metric
) AS r"""
# A batch of tensors' health flags: simulation, epoch, flag (NULL for a tensor without any).
TENSOR_FLAGS = "unnest(%s::uuid[], %s::int4[], %s::text[]) AS r(simulation_id, epoch, flag)"
STORED_FLAGS = """(
    SELECT t.simulation_id, t.epoch, f.flag FROM nnt_tensor t
    LEFT JOIN LATERAL jsonb_array_elements_text(
        CASE WHEN jsonb_typeof(t.stats -> 'flags') = 'array' THEN t.stats -> 'flags' END
    ) AS f(flag) ON true
    WHERE t.chunk = 0
) AS r"""

# A value at (epoch, at) replaces `last` only when it is later; equal keys are one replay.
_LATER = (
    "t.last_epoch IS NULL OR (EXCLUDED.last_epoch, EXCLUDED.last_at) > (t.last_epoch, t.last_at)"
)
# Ties of the best value keep its first epoch, whatever the order the epochs came in.
_LOWER = "t.best_min IS NULL OR (EXCLUDED.best_min, EXCLUDED.min_epoch) < (t.best_min, t.min_epoch)"
_HIGHER = (
    "t.best_max IS NULL OR EXCLUDED.best_max > t.best_max "
    "OR (EXCLUDED.best_max = t.best_max AND EXCLUDED.max_epoch < t.max_epoch)"
)

# Rows are upserted in simulation order, so two workers' transactions (the epochs' and the
# tensors' both write nnt_run_health) lock the same rows in the same order: no deadlock.
_MERGE_METRICS = f"""
WITH summary AS (
    SELECT simulation_id, metric, last, last_epoch, last_at, best_min, min_epoch, best_max,
           max_epoch, nonfinite
    FROM {{source}}
), merged AS (
    INSERT INTO nnt_run_metric AS t (simulation_id, metric, last, last_epoch, last_at,
                                     best_min, min_epoch, best_max, max_epoch, nonfinite)
    SELECT simulation_id, metric, last, last_epoch, last_at, best_min, min_epoch, best_max,
           max_epoch, nonfinite
    FROM summary ORDER BY simulation_id, metric
    ON CONFLICT (simulation_id, metric) DO UPDATE SET
        last = CASE WHEN {_LATER} THEN EXCLUDED.last ELSE t.last END,
        last_epoch = CASE WHEN {_LATER} THEN EXCLUDED.last_epoch ELSE t.last_epoch END,
        last_at = CASE WHEN {_LATER} THEN EXCLUDED.last_at ELSE t.last_at END,
        best_min = CASE WHEN {_LOWER} THEN EXCLUDED.best_min ELSE t.best_min END,
        min_epoch = CASE WHEN {_LOWER} THEN EXCLUDED.min_epoch ELSE t.min_epoch END,
        best_max = CASE WHEN {_HIGHER} THEN EXCLUDED.best_max ELSE t.best_max END,
        max_epoch = CASE WHEN {_HIGHER} THEN EXCLUDED.max_epoch ELSE t.max_epoch END,
        nonfinite = t.nonfinite OR EXCLUDED.nonfinite
)
INSERT INTO nnt_run_health AS h (simulation_id, nonfinite_metric)
SELECT simulation_id, bool_or(nonfinite) FROM summary
GROUP BY simulation_id ORDER BY simulation_id
ON CONFLICT (simulation_id) DO UPDATE SET
    nonfinite_metric = h.nonfinite_metric OR EXCLUDED.nonfinite_metric
"""

# The flags of a later epoch replace the row's; those of the same epoch join them (one
# epoch's tensors come in several batches); those of an earlier epoch change nothing.
_MERGE_FLAGS = """
WITH flags AS (
    SELECT simulation_id, epoch, flag FROM {source}
), latest AS (
    SELECT f.simulation_id, f.epoch,
           coalesce(array_agg(DISTINCT f.flag ORDER BY f.flag) FILTER (WHERE f.flag IS NOT NULL),
                    '{{}}') AS flags
    FROM flags f
    JOIN (SELECT simulation_id, max(epoch) AS epoch FROM flags GROUP BY simulation_id) m
      ON m.simulation_id = f.simulation_id AND m.epoch = f.epoch
    GROUP BY f.simulation_id, f.epoch
)
INSERT INTO nnt_run_health AS h (simulation_id, tensor_epoch, flags)
SELECT simulation_id, epoch, flags FROM latest ORDER BY simulation_id
ON CONFLICT (simulation_id) DO UPDATE SET
    flags = CASE
        WHEN h.tensor_epoch IS NULL OR EXCLUDED.tensor_epoch > h.tensor_epoch THEN EXCLUDED.flags
        WHEN EXCLUDED.tensor_epoch = h.tensor_epoch
            THEN ARRAY(SELECT DISTINCT f FROM unnest(h.flags || EXCLUDED.flags) AS f ORDER BY f)
        ELSE h.flags END,
    tensor_epoch = GREATEST(h.tensor_epoch, EXCLUDED.tensor_epoch)
"""

MERGE_METRICS = _MERGE_METRICS.format(source=METRIC_SUMMARIES)
MERGE_FLAGS = _MERGE_FLAGS.format(source=TENSOR_FLAGS)
BACKFILL_METRICS = _MERGE_METRICS.format(source=STORED_METRICS)
BACKFILL_FLAGS = _MERGE_FLAGS.format(source=STORED_FLAGS)


def backfill(conn: psycopg.Connection) -> bool:
    """Fill the summary tables from the stored epoch metrics and tensors, once (in one
    transaction, marked done by the table's comment); returns whether it ran now."""
    row = conn.execute("SELECT obj_description('nnt_run_metric'::regclass, 'pg_class')").fetchone()
    if row is not None and row[0] == FILLED:
        return False
    with conn.transaction():
        conn.execute(BACKFILL_METRICS)
        conn.execute(BACKFILL_FLAGS)
        conn.execute(f"COMMENT ON TABLE nnt_run_metric IS '{FILLED}'")
    return True


async def merge_metrics(conn: psycopg.AsyncConnection[Any], params: list[list[Any]]) -> None:
    """Fold a batch's metric summaries (stream_processors.rows.metric_summaries: columns)
    into nnt_run_metric, in the caller's transaction."""
    if params and params[0]:
        await conn.execute(MERGE_METRICS, params)


async def merge_flags(conn: psycopg.AsyncConnection[Any], params: list[list[Any]]) -> None:
    """Fold a batch's tensor health flags (stream_processors.rows.tensor_flags: columns) into
    nnt_run_health, in the caller's transaction."""
    if params and params[0]:
        await conn.execute(MERGE_FLAGS, params)
