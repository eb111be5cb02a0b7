"""Status projection: the statement that keeps the web's nnt_simulation rows current from
nnt.status events (the stream workers run it, stream_processors/projection.py).

A `failed` event's one-line `message` becomes the row's `message`, and its full text (`detail`,
the traceback, or the message where there is none) the row's `error`.

Out-of-order safe: a row changes only when the event is at least as recent as `status_at`.
`deleted` is final: it applies whatever its time (a lagging clock cannot keep a run alive),
and no later event moves a deleted row again. A `deleted` event never re-creates a row the
web has already removed.

A `stopped` event of the early-stop rule keeps its reason in `early_stop`: the experiment's
compute saved is counted from it. A later plain `stopped` (the orchestrator's) keeps it; any
other status (a resume) clears it.

The final test metrics (the event's typed `metrics`) go to `test_metrics` on a `finished` or
an early-stopped `stopped` event, `{}` when the run had no test set. Another end (a plain
`stopped`, `failed`) keeps them; a run going on again (queued, running, paused) clears them.
"""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from schemas.status import TERMINAL, StatusEvent

log = logging.getLogger(__name__)

_SET = """
    status = %(status)s::text,
    epoch = CASE WHEN %(epoch)s::int > 0 THEN %(epoch)s::int ELSE s.epoch END,
    total_epochs = CASE WHEN %(total_epochs)s::int > 0 THEN %(total_epochs)s::int ELSE s.total_epochs END,
    message = %(message)s::text,
    error = CASE WHEN %(status)s::text = 'failed' THEN %(error)s::text ELSE s.error END,
    status_at = %(at)s::timestamptz,
    updated_at = now(),
    started_at = COALESCE(s.started_at, %(started_at)s::timestamptz),
    finished_at = CASE WHEN %(terminal)s::boolean THEN COALESCE(%(finished_at)s::timestamptz, s.finished_at)
                       ELSE NULL END,
    early_stop = CASE WHEN %(status)s::text = 'stopped' THEN COALESCE(%(early_stop)s::jsonb, s.early_stop)
                      ELSE %(early_stop)s::jsonb END,
    test_metrics = CASE WHEN %(terminal)s::boolean THEN COALESCE(%(test_metrics)s::jsonb, s.test_metrics)
                        ELSE NULL END
"""

# Every parameter is cast where used: a reused placeholder must have one type.
UPSERT = f"""
INSERT INTO nnt_simulation AS s (
    id, experiment_id, owner_id, owner_name, name, status, epoch, total_epochs, message, error,
    config, tags, status_at, started_at, finished_at, early_stop, test_metrics)
VALUES (
    %(id)s::uuid, (SELECT e.id FROM nnt_experiment e WHERE e.id = %(experiment_id)s::uuid),
    (SELECT u.id FROM auth_user u WHERE u.id = %(owner_id)s::int), %(owner)s::text,
    COALESCE(%(name)s::text, %(default_name)s::text), %(status)s::text, %(epoch)s::int, %(total_epochs)s::int, %(message)s::text,
    CASE WHEN %(status)s::text = 'failed' THEN %(error)s::text ELSE '' END,
    COALESCE(%(config)s::jsonb, '{{}}'::jsonb), COALESCE(%(tags)s::varchar(64)[], '{{}}'), %(at)s::timestamptz,
    %(started_at)s::timestamptz, %(finished_at)s::timestamptz, %(early_stop)s::jsonb,
    %(test_metrics)s::jsonb)
ON CONFLICT (id) DO UPDATE SET {_SET}
WHERE s.status_at <= %(at)s::timestamptz AND s.status <> 'deleted'
RETURNING s.owner_name
"""

MARK_DELETED = f"UPDATE nnt_simulation AS s SET {_SET} WHERE s.id = %(id)s::uuid AND s.status <> 'deleted' RETURNING s.owner_name"


def params(event: StatusEvent) -> dict[str, Any]:
    """Query parameters of one lifecycle event."""
    sid = event.simulation_id
    terminal = event.status in TERMINAL
    return {
        "id": sid,
        "experiment_id": event.experiment_id,
        "owner": event.owner or "",
        "name": event.name,
        "default_name": f"simulation {str(sid)[:8]}",
        "status": event.status,
        "epoch": event.epoch,
        "total_epochs": event.total_epochs,
        "message": event.message,
        "owner_id": event.owner_id,
        "error": failure_text(event),
        "tags": [t[:64] for t in event.tags] if event.tags is not None else None,
        "config": Jsonb(event.config) if event.config is not None else None,
        "at": event.at,
        "started_at": event.at if event.status == "running" else None,
        "finished_at": event.at if terminal else None,
        "terminal": terminal,
        "early_stop": early_stop(event),
        "test_metrics": test_metrics(event),
    }


def early_stop(event: StatusEvent) -> Jsonb | None:
    """What `early_stop` keeps of an early-stopped run: the rule's reason."""
    if event.early_stop is None or event.status != "stopped":
        return None
    return Jsonb(event.early_stop.model_dump(mode="json"))


def test_metrics(event: StatusEvent) -> Jsonb | None:
    """The final test metrics of a run that ended by training (finished, or stopped early),
    `{}` when it had no test set; None for any other event (a terminal one keeps the row's)."""
    if event.status == "finished" or (event.status == "stopped" and event.early_stop is not None):
        return Jsonb(event.metrics or {})
    return None


def failure_text(event: StatusEvent) -> str:
    """The full error of a `failed` event: its detail (traceback), else its message."""
    return (event.detail or event.message) if event.status == "failed" else ""


async def project(conn: psycopg.AsyncConnection[tuple], event: StatusEvent) -> str | None:
    """Apply one lifecycle event; return the simulation's owner name when the row changed."""
    sql = MARK_DELETED if event.status == "deleted" else UPSERT
    try:
        async with conn.transaction():  # a savepoint: a failed projection keeps the history
            cur = await conn.execute(sql, params(event))
            row = await cur.fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn) as exc:
        log.warning(
            "simulation %s: status projection skipped, web tables missing (%s)",
            event.simulation_id,
            str(exc).strip(),
        )
        return None
    return row[0] if row else None
