"""The native downsampling and retention pass: batch points folded into buckets, old tensor
values thinned (docs/stream-processing.md). Where the tables are TimescaleDB hypertables the
database does the same itself (store.schema: a continuous aggregate and jobs), which
`timescaledb_maintains` tells.

Every statement is idempotent and replay-safe: a replayed raw point lands beside its bucket
and the next pass folds it in again; the bucket's min/max/last do not change.
"""

from __future__ import annotations

from datetime import timedelta

import psycopg

Conn = psycopg.AsyncConnection[tuple]

# Only one worker runs a maintenance pass at a time (Faust's leader election is disabled).
LOCK_KEY = 0x4E4E5444  # "NNTD"

# One statement: delete the old raw points of every bucket that holds any, together with the
# bucket's earlier reduced row, and insert the bucket's reduced row in their place.
REDUCE_BATCHES = """
WITH gone AS (
    DELETE FROM nnt_batch_metric b
    WHERE (b.simulation_id, b.metric, b.epoch, b.at, b.step / %(steps)s) IN (
        SELECT simulation_id, metric, epoch, at, step / %(steps)s FROM nnt_batch_metric
        WHERE NOT reduced AND at < %(cutoff)s)
    RETURNING b.*
)
INSERT INTO nnt_batch_metric (simulation_id, epoch, step, metric, value, value_min, value_max,
                              reduced, at)
SELECT simulation_id, epoch, max(step), metric,
       (array_agg(value ORDER BY step DESC))[1],
       min(coalesce(value_min, value)), max(coalesce(value_max, value)), true, at
FROM gone
GROUP BY simulation_id, metric, epoch, at, step / %(steps)s
"""

THIN_CHUNKS = """
DELETE FROM nnt_tensor
WHERE at < %(cutoff)s AND chunk > 0 AND epoch %% %(keep)s <> 0
"""
THIN_FIRST = """
UPDATE nnt_tensor SET data = NULL, chunks = 0, reduced = true
WHERE at < %(cutoff)s AND chunk = 0 AND chunks > 0 AND epoch %% %(keep)s <> 0
"""

# Whether the folding and thinning are TimescaleDB's: nnt_batch_metric is a hypertable.
# The catalog is asked only once the extension is known to be there (no catalog otherwise).
TABLE_SQL = """
SELECT c.relkind::text, EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
FROM pg_class c WHERE c.oid = to_regclass('nnt_batch_metric')
"""
HYPERTABLE_SQL = """
SELECT EXISTS (SELECT 1 FROM timescaledb_information.hypertables
               WHERE hypertable_schema = current_schema() AND hypertable_name = 'nnt_batch_metric')
"""


async def timescaledb_maintains(conn: Conn) -> bool | None:
    """True when the tables are hypertables (TimescaleDB folds and thins), False when native
    or plain (the passes here do), None while the table is not there yet."""
    row = await (await conn.execute(TABLE_SQL)).fetchone()
    if row is None:
        return None
    kind, extension = row
    if kind == "p" or not extension:
        return False
    hyper = await (await conn.execute(HYPERTABLE_SQL)).fetchone()
    return bool(hyper and hyper[0])


async def maintain(
    conn: Conn,
    batch_bucket_steps: int,
    batch_raw_age_s: float,
    tensor_thin_age_s: float,
    tensor_keep_every: int,
) -> dict[str, int]:
    """One downsampling and retention pass; returns rows touched (nothing when another
    worker holds the pass's lock)."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,))
    row = await cur.fetchone()
    if not row or not row[0]:
        return {}
    now = (await (await conn.execute("SELECT now()")).fetchone())[0]  # type: ignore[index]
    out = {}
    cur = await conn.execute(
        REDUCE_BATCHES,
        {"steps": batch_bucket_steps, "cutoff": now - timedelta(seconds=batch_raw_age_s)},
    )
    out["batch_buckets"] = max(cur.rowcount, 0)
    thin = {"cutoff": now - timedelta(seconds=tensor_thin_age_s), "keep": tensor_keep_every}
    cur = await conn.execute(THIN_CHUNKS, thin)
    out["tensor_chunks_dropped"] = max(cur.rowcount, 0)
    cur = await conn.execute(THIN_FIRST, thin)
    out["tensors_thinned"] = max(cur.rowcount, 0)
    return out
