"""Each run's diagnoses and the evidence behind them: every statement that touches them.

`nnt_run_diagnosis` holds one row per (simulation, problem) the trainer ever reported: the
text and layers of the latest epoch that carried it, the first and last epoch it was seen,
and `active` when the run's latest diagnosed epoch still carries it. `nnt_run_health`'s
`diagnosed_epoch` (with `diagnosed_at`) is that latest epoch, so a run diagnosed healthy
differs from one never diagnosed. `nnt_epoch_evidence` keeps each logged epoch's evidence.
The tables are created by store/sql/timeseries.sql.

The stream workers merge a batch of epoch events in the transaction that stores their
metrics (stream_processors/agents.py): keys are compared, never arrival order, so epochs
arriving late, twice or out of order give the same rows. The web reads them (runs table,
API, export) with READ_* below; the deletion of a run removes its rows (TABLES).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import psycopg

TABLES = ("nnt_run_diagnosis", "nnt_epoch_evidence")
MAX_EVIDENCE_EPOCHS = 1000  # what /diagnoses answers: the last logged epochs
Conn = psycopg.AsyncConnection[tuple]

_BATCH = """jsonb_to_recordset(%s::jsonb) AS r(
    simulation_id uuid, problem text, severity text, title text, summary text, fix text,
    layers jsonb, first_epoch int, last_epoch int, last_at timestamptz, evidence jsonb)"""
_RUNS = "jsonb_to_recordset(%s::jsonb) AS r(simulation_id uuid, epoch int, at timestamptz)"
# A later (epoch, event time) replaces what an earlier one said; equal keys are one replay.
_LATER = "(EXCLUDED.last_epoch, EXCLUDED.last_at) > (d.last_epoch, d.last_at)"
_DIAGNOSED_LATER = (
    "h.diagnosed_epoch IS NULL OR "
    "(EXCLUDED.diagnosed_epoch, EXCLUDED.diagnosed_at) > (h.diagnosed_epoch, h.diagnosed_at)"
)
_TAKE = ("severity", "title", "summary", "fix", "layers", "evidence", "last_epoch", "last_at")

# One statement per batch: the runs' latest diagnosed epoch, then every (run, problem) row.
# Rows are upserted in simulation order, as store/summaries.py does: no lock cycle.
MERGE = f"""
WITH runs AS (
    INSERT INTO nnt_run_health AS h (simulation_id, diagnosed_epoch, diagnosed_at)
    SELECT simulation_id, epoch, at FROM {_RUNS} ORDER BY simulation_id
    ON CONFLICT (simulation_id) DO UPDATE SET
        diagnosed_epoch = CASE WHEN {_DIAGNOSED_LATER} THEN EXCLUDED.diagnosed_epoch
                               ELSE h.diagnosed_epoch END,
        diagnosed_at = CASE WHEN {_DIAGNOSED_LATER} THEN EXCLUDED.diagnosed_at
                            ELSE h.diagnosed_at END
    RETURNING h.simulation_id
)
INSERT INTO nnt_run_diagnosis AS d (simulation_id, problem, severity, title, summary, fix, layers,
                                    first_epoch, last_epoch, last_at, evidence)
SELECT simulation_id, problem, severity, title, summary, fix,
       ARRAY(SELECT jsonb_array_elements_text(coalesce(layers, '[]'))), first_epoch,
       last_epoch, last_at, coalesce(evidence, '{{}}')
FROM {_BATCH} ORDER BY simulation_id, problem
ON CONFLICT (simulation_id, problem) DO UPDATE SET
    first_epoch = LEAST(d.first_epoch, EXCLUDED.first_epoch),
    {", ".join(f"{c} = CASE WHEN {_LATER} THEN EXCLUDED.{c} ELSE d.{c} END" for c in _TAKE)},
    at = now()
"""
# Active: carried by the run's latest diagnosed epoch (so a later epoch decides, whatever
# the order epochs arrive in). Only rows whose answer changes are written.
_ACTIVE = "coalesce((d.last_epoch, d.last_at) = (h.diagnosed_epoch, h.diagnosed_at), false)"
SET_ACTIVE = f"""
UPDATE nnt_run_diagnosis d SET active = {_ACTIVE}, at = now()
FROM nnt_run_health h
WHERE h.simulation_id = d.simulation_id AND d.simulation_id = ANY(%s::uuid[])
  AND d.active <> {_ACTIVE}
"""
_COLUMNS = (
    "problem", "severity", "title", "summary", "fix", "layers", "first_epoch", "last_epoch",
    "evidence", "active",
)  # fmt: skip
# Fatal first, then by the epoch first seen.
_ORDER = "(d.severity = 'fatal') DESC, d.first_epoch, d.problem"
ACTIVE_OF = f"""
SELECT d.simulation_id, {", ".join(f"d.{c}" for c in _COLUMNS)}
FROM nnt_run_diagnosis d WHERE d.simulation_id = ANY(%s::uuid[]) AND d.active
ORDER BY d.simulation_id, {_ORDER}
"""
FLAGS_OF = """
SELECT simulation_id, CASE WHEN nonfinite_metric THEN array_append(flags, 'nonfinite_metric')
                           ELSE flags END
FROM nnt_run_health WHERE simulation_id = ANY(%s::uuid[])
"""
RUN_OF = "SELECT id, owner_name, status FROM nnt_simulation WHERE id = ANY(%s::uuid[])"

# The web's reads.
READ_ALL = f"""
SELECT {", ".join(f"d.{c}" for c in _COLUMNS)} FROM nnt_run_diagnosis d
WHERE d.simulation_id = %s ORDER BY {_ORDER}
"""
READ_EVIDENCE = """
SELECT evidence FROM (
    SELECT DISTINCT ON (epoch) epoch, evidence FROM nnt_epoch_evidence
    WHERE simulation_id = %s ORDER BY epoch DESC, at DESC LIMIT %s
) AS e ORDER BY epoch
"""
READ_ALERTS = """
SELECT d.simulation_id, s.name, d.problem, d.severity, d.title, d.summary, d.fix,
       d.first_epoch, d.reported_at
FROM nnt_run_diagnosis d JOIN nnt_simulation s ON s.id = d.simulation_id
WHERE s.owner_id = %s AND s.status <> 'deleted' AND d.reported_at > %s
ORDER BY d.reported_at DESC, d.simulation_id, d.problem LIMIT %s
"""
WAS_DIAGNOSED = """
SELECT EXISTS (SELECT 1 FROM nnt_run_health WHERE simulation_id = %s
               AND diagnosed_epoch IS NOT NULL)
    OR EXISTS (SELECT 1 FROM nnt_run_diagnosis WHERE simulation_id = %s)
"""
# The runs table's health rank of a run diagnosed by the trainer (NULL: never diagnosed, the
# tensor flags decide): 2 failing (an active fatal diagnosis), 1 warning, 0 healthy.
DIAGNOSED_RANK = """(SELECT CASE WHEN bool_or(d.severity = 'fatal') THEN 2
                             WHEN count(*) > 0 THEN 1 ELSE 0 END
    FROM nnt_run_diagnosis d WHERE d.simulation_id = h.simulation_id AND d.active)"""


def clean(value: Any) -> Any:
    """A JSON document PostgreSQL's jsonb takes: non-finite numbers as null, no NUL character
    (jsonb refuses both, and one such event would be dead-lettered with its metrics)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    return value


def merge_params(runs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]) -> list[str]:
    """MERGE's two parameters: the runs' latest diagnosed (epoch, at) and the diagnosis rows
    of a batch, folded by stream_processors.rows.diagnosis_rows."""
    return [json.dumps(runs, default=str), json.dumps(rows, default=str)]


async def merge(
    conn: Conn, runs: Sequence[dict[str, Any]], rows: Sequence[dict[str, Any]]
) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """Fold a batch into the runs' diagnoses; returns each run's active set afterwards."""
    if not runs:
        return {}
    await conn.execute(MERGE, merge_params(runs, rows))
    sids = sorted({uuid.UUID(str(r["simulation_id"])) for r in runs})
    await conn.execute(SET_ACTIVE, (sids,))
    cur = await conn.execute(ACTIVE_OF, (sids,))
    out: dict[uuid.UUID, list[dict[str, Any]]] = {sid: [] for sid in sids}
    for row in await cur.fetchall():
        out[row[0]].append(diagnosis(row[1:]))
    return out


async def run_facts(
    conn: Conn, sids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, str, list[str]]]:
    """(owner, status, health flags) of runs, for their live update; owner and status are
    empty where the web's table is missing or has no row."""
    wanted = sorted(set(sids))
    cur = await conn.execute(FLAGS_OF, (wanted,))
    flags = {row[0]: sorted(row[1] or []) for row in await cur.fetchall()}
    runs: dict[uuid.UUID, tuple[str, str]] = {}
    try:
        async with conn.transaction():  # a savepoint: a missing web table keeps the batch
            cur = await conn.execute(RUN_OF, (wanted,))
            runs = {row[0]: (row[1] or "", row[2] or "") for row in await cur.fetchall()}
    except (psycopg.errors.UndefinedTable, psycopg.errors.UndefinedColumn):
        pass
    return {sid: (*runs.get(sid, ("", "")), flags.get(sid, [])) for sid in wanted}


def verdict(status: str, active: Sequence[dict[str, Any]]) -> str:
    """A diagnosed run's verdict: failing (failed, or an active fatal diagnosis), warning
    (an active warning) or healthy."""
    if status == "failed" or any(d["severity"] == "fatal" for d in active):
        return "failing"
    return "warning" if active else "healthy"


def diagnosis(row: Sequence[Any]) -> dict[str, Any]:
    """A stored row (READ_ALL's columns) as the API shows it: a Diagnosis plus `active`."""
    out = dict(zip(_COLUMNS, row, strict=True))
    out["layers"] = list(out["layers"] or [])
    out["evidence"] = _json(out["evidence"]) or {}
    return out


def brief(full: dict[str, Any]) -> dict[str, Any]:
    """What the runs table's health shows of an active diagnosis."""
    keys = ("problem", "severity", "title", "summary", "first_epoch", "layers")
    return {k: full[k] for k in keys}


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str | bytes) else value


def read_all(cursor: Any, simulation_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every diagnosis a run ever had, fatal first, then by the epoch first seen."""
    cursor.execute(READ_ALL, [simulation_id])
    return [diagnosis(row) for row in cursor.fetchall()]


def read_active(cursor: Any, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The active diagnoses of each of these runs (brief form), fatal first."""
    out: dict[uuid.UUID, list[dict[str, Any]]] = {}
    cursor.execute(ACTIVE_OF, [list(ids)])
    for row in cursor.fetchall():
        out.setdefault(row[0], []).append(brief(diagnosis(row[1:])))
    return out


def read_evidence(
    cursor: Any, simulation_id: uuid.UUID, limit: int = MAX_EVIDENCE_EPOCHS
) -> list[dict[str, Any]]:
    """The evidence of the run's last `limit` logged epochs, by epoch (the latest event of
    an epoch logged twice)."""
    cursor.execute(READ_EVIDENCE, [simulation_id, limit])
    return [_json(row[0]) for row in cursor.fetchall()]


def was_diagnosed(cursor: Any, simulation_id: uuid.UUID) -> bool:
    """Whether the trainer ever sent diagnoses for this run."""
    cursor.execute(WAS_DIAGNOSED, [simulation_id, simulation_id])
    row = cursor.fetchone()
    return bool(row and row[0])


ALERT_KEYS = (
    "simulation_id", "name", "problem", "severity", "title", "summary", "fix", "first_epoch", "at",
)  # fmt: skip


def read_alerts(cursor: Any, owner_id: int, since: datetime, limit: int) -> list[dict[str, Any]]:
    """The diagnoses of one user's runs first reported after `since`, newest first."""
    cursor.execute(READ_ALERTS, [owner_id, since, limit])
    return [dict(zip(ALERT_KEYS, row, strict=True)) for row in cursor.fetchall()]
