"""Deleting a simulation's time-series rows, and keeping late events from bringing them back.

A persisted `deleted` status purges the simulation's rows in the status batch's transaction;
`nnt_simulation.status = 'deleted'` is then the tombstone every writer checks. Writers and
the purge serialise per simulation on transaction-scoped advisory locks (shared for writers,
exclusive for the purge; in-memory, so no row is written for the check): whichever commits
first, no row of a deleted simulation survives. Locks are taken in sorted order, so two
transactions never wait on each other in a cycle.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable

import psycopg

from store import diagnoses, summaries
from store.database import one_line
from store.tables import BATCH_METRIC, EPOCH_METRIC, RESOURCE, STATUS_EVENT, TENSOR

log = logging.getLogger(__name__)

# Namespace of the two-key advisory locks (the one-key space holds the maintenance lock).
LOCK_SPACE = 0x4E4E5453  # "NNTS"
TABLES = (
    EPOCH_METRIC.name,
    BATCH_METRIC.name,
    TENSOR.name,
    RESOURCE.name,
    STATUS_EVENT.name,
    *summaries.TABLES,
    *diagnoses.TABLES,
)
Conn = psycopg.AsyncConnection[tuple]

DELETED_SQL = "SELECT id FROM nnt_simulation WHERE id = ANY(%s::uuid[]) AND status = 'deleted'"


def lock_keys(sids: Iterable[uuid.UUID]) -> list[int]:
    """Sorted, distinct 32-bit lock keys of simulations (a collision only makes one wait)."""
    return sorted({int.from_bytes(s.bytes[:4], "big", signed=True) for s in sids})


async def _lock(conn: Conn, sids: Iterable[uuid.UUID], function: str) -> None:
    keys = lock_keys(sids)
    if keys:  # unnest yields the keys in array order: the locks are taken sorted
        await conn.execute(
            f"SELECT {function}(%s, k) FROM unnest(%s::int4[]) AS k", (LOCK_SPACE, keys)
        )


async def deleted_among(conn: Conn, sids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """The simulations among `sids` whose status is 'deleted' (none if the web tables are
    not there: then nothing can be deleted yet)."""
    wanted = list(set(sids))
    if not wanted:
        return set()
    try:
        async with conn.transaction():  # a savepoint: a missing table keeps the batch
            cur = await conn.execute(DELETED_SQL, (wanted,))
            return {row[0] for row in await cur.fetchall()}
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        log.debug("deleted simulations unknown, web tables missing (%s)", one_line(exc))
        return set()


async def guard(conn: Conn, sids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """For a writer: hold off concurrent purges of `sids` until this transaction ends, and
    return those already deleted (their rows must not be written)."""
    wanted = set(sids)
    await _lock(conn, wanted, "pg_advisory_xact_lock_shared")
    return await deleted_among(conn, wanted)


async def lock_for_purge(conn: Conn, sids: Iterable[uuid.UUID]) -> None:
    """For the status batch: wait for in-flight writes of `sids`, block new ones till commit."""
    await _lock(conn, sids, "pg_advisory_xact_lock")


async def purge(conn: Conn, sid: uuid.UUID) -> dict[str, int]:
    """Delete every time-series row of one simulation; returns rows deleted per table."""
    out = {}
    for table in TABLES:
        cur = await conn.execute(f"DELETE FROM {table} WHERE simulation_id = %s", (sid,))
        out[table] = max(cur.rowcount, 0)
    log.info("simulation %s deleted: rows removed %s", sid, out)
    return out
