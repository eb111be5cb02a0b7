"""Downsampling and retention: what is kept raw, what is reduced, what is thinned.

* Epoch metrics: always kept, raw.
* Batch-level points: raw while younger than `nnt_batch_raw_age_s`; older ones are folded into
  buckets of `nnt_batch_bucket_steps` steps per (simulation, metric, epoch): one row with the
  last value, the bucket's min and max, `reduced = true`, at the bucket's last step.
* Full tensors: the sink keeps the values of epochs that are multiples of
  `nnt_full_tensor_period` (statistics and histograms always); retention later drops the
  values of tensors older than `nnt_tensor_thin_age_s` unless their epoch is a multiple of
  `nnt_tensor_keep_every`. A thinned tensor keeps its chunk-0 row (stats, shape) with
  `data = NULL`, `chunks = 0`, `reduced = true`.

Where the tables are TimescaleDB hypertables the database does the folding and thinning
itself (a continuous aggregate and jobs, infra/timeseries.py), so `Maintenance` finds that
out once and runs nothing. The passes here are the native fallback: every pass is idempotent
and replay-safe (a replayed raw point lands beside its bucket and the next pass folds it in
again; the bucket's min/max/last do not change). The sink's full-tensor period applies in
both forms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

import psycopg

from schemas.tensors import TensorHeader

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Policy:
    """The downsampling settings in one place (see the module docstring)."""

    full_tensor_period: int = 1
    batch_raw_age_s: float = 3600.0
    batch_bucket_steps: int = 10
    tensor_thin_age_s: float = 30 * 86400.0
    tensor_keep_every: int = 10


def keeps_full(epoch: int, period: int) -> bool:
    """Whether the sink keeps the full values of a tensor logged at `epoch`."""
    return period <= 1 or epoch % period == 0


def thin_at_sink(
    chunks: list[tuple[TensorHeader, bytes]], period: int
) -> list[tuple[TensorHeader, bytes, bool]]:
    """Apply the full-tensor period: (header, payload, reduced) of the chunks to store.

    A dropped tensor keeps its chunk 0 as a statistics-only row; its other chunks go.
    """
    out: list[tuple[TensorHeader, bytes, bool]] = []
    for header, payload in chunks:
        if header.chunks == 0 or keeps_full(header.epoch, period):
            out.append((header, payload, False))
        elif header.chunk == 0:
            out.append((header.model_copy(update={"chunks": 0}), b"", True))
    return out


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


async def timescaledb_maintains(conn: psycopg.AsyncConnection[tuple]) -> bool | None:
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


class Maintenance:
    """The maintenance timer's work: the native passes, or nothing on TimescaleDB (found out
    on the first pass that sees the tables, once: a database never changes form)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.native: bool | None = None

    async def run(self, conn: psycopg.AsyncConnection[tuple]) -> dict[str, int]:
        """One pass where the tables are native; rows touched (nothing otherwise)."""
        if self.native is None:
            timescale = await timescaledb_maintains(conn)
            if timescale is None:
                return {}
            self.native = not timescale
            log.info(
                "maintenance: %s",
                "native tables, batch folding and tensor thinning run here"
                if self.native
                else "TimescaleDB hypertables, the database folds batch points and thins "
                "tensors itself (infra/timeseries.py); nothing to run here",
            )
        return await maintain(conn, self.policy) if self.native else {}


async def maintain(conn: psycopg.AsyncConnection[tuple], policy: Policy) -> dict[str, int]:
    """One downsampling and retention pass; returns rows touched (nothing when locked)."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (LOCK_KEY,))
    row = await cur.fetchone()
    if not row or not row[0]:
        return {}
    now = (await (await conn.execute("SELECT now()")).fetchone())[0]  # type: ignore[index]
    out = {}
    cur = await conn.execute(
        REDUCE_BATCHES,
        {
            "steps": policy.batch_bucket_steps,
            "cutoff": now - timedelta(seconds=policy.batch_raw_age_s),
        },
    )
    out["batch_buckets"] = max(cur.rowcount, 0)
    thin = {
        "cutoff": now - timedelta(seconds=policy.tensor_thin_age_s),
        "keep": policy.tensor_keep_every,
    }
    cur = await conn.execute(THIN_CHUNKS, thin)
    out["tensor_chunks_dropped"] = max(cur.rowcount, 0)
    cur = await conn.execute(THIN_FIRST, thin)
    out["tensors_thinned"] = max(cur.rowcount, 0)
    return out
