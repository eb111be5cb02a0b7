"""The live tag aggregates' reads: owners and tags of simulations, and their stored epoch
points (stream_processors/aggregates.py folds them; its rows go to nnt_tag_aggregate through
the sink, store.tables.TAG_AGGREGATE).

Both read the web's nnt_simulation or the stream's nnt_epoch_metric, and answer nothing while
a table is missing: the web may not have migrated yet, and aggregates wait where ingestion
does not.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Any, cast

import psycopg

from store.database import one_line

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[tuple]
# (simulation id, owner's name, tags): what nnt_simulation says of a run.
Tagged = tuple[str, str | None, list[str] | None]
# (simulation, metric, epoch, value, at): one stored epoch point.
StoredPoint = tuple[uuid.UUID, str, int, float | None, datetime]

TAGS_SQL = "SELECT id::text, owner_name, tags FROM nnt_simulation WHERE id = ANY(%s::uuid[])"
POINTS_SQL = (
    "SELECT simulation_id, metric, epoch, value, at FROM nnt_epoch_metric "
    "WHERE simulation_id = ANY(%s::uuid[])"
)


async def _rows(conn: Conn, query: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """Rows of one read query; none when its tables are missing (logged)."""
    try:
        async with conn.transaction():  # a savepoint: a missing table is an answer
            cur = await conn.execute(query, (ids,))
            return await cur.fetchall()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        log.warning("tag aggregates: cannot read (%s)", one_line(exc))
        return []


async def simulation_tags(conn: Conn, ids: list[str]) -> list[Tagged]:
    """Owner and tags of those simulations among `ids` (text ids) that have a row."""
    return cast(list[Tagged], await _rows(conn, TAGS_SQL, ids))


async def epoch_points(conn: Conn, ids: list[str]) -> list[StoredPoint]:
    """Every stored epoch point of the simulations `ids` (text ids)."""
    return cast(list[StoredPoint], await _rows(conn, POINTS_SQL, ids))
