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
itself (a continuous aggregate and jobs, store/schema.py), so `Maintenance` finds that
out once and runs nothing. The passes (store/maintenance.py) are the native fallback: every
pass is idempotent and replay-safe (a replayed raw point lands beside its bucket and the next
pass folds it in again; the bucket's min/max/last do not change). The sink's full-tensor
period applies in both forms.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from schemas.tensors import TensorHeader
from store import maintenance

log = logging.getLogger(__name__)


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


class Maintenance:
    """The maintenance timer's work: the native passes, or nothing on TimescaleDB (found out
    on the first pass that sees the tables, once: a database never changes form)."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.native: bool | None = None

    async def run(self, conn: psycopg.AsyncConnection[tuple]) -> dict[str, int]:
        """One pass where the tables are native; rows touched (nothing otherwise)."""
        if self.native is None:
            timescale = await maintenance.timescaledb_maintains(conn)
            if timescale is None:
                return {}
            self.native = not timescale
            log.info(
                "maintenance: %s",
                "native tables, batch folding and tensor thinning run here"
                if self.native
                else "TimescaleDB hypertables, the database folds batch points and thins "
                "tensors itself (store/schema.py); nothing to run here",
            )
        return await maintain(conn, self.policy) if self.native else {}


async def maintain(conn: psycopg.AsyncConnection[tuple], policy: Policy) -> dict[str, int]:
    """One downsampling and retention pass (store.maintenance); returns rows touched
    (nothing when locked)."""
    return await maintenance.maintain(
        conn,
        policy.batch_bucket_steps,
        policy.batch_raw_age_s,
        policy.tensor_thin_age_s,
        policy.tensor_keep_every,
    )
