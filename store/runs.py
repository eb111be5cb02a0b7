"""Run records every orchestrator shares: one row per simulation, command claims, host leases.

A row holds the run's spec and its lifecycle state (the host that runs it while active, its
container or pid, the `start` commands handled, the epoch of the checkpoint kept in
`nnt_blob`). `lock()` is `SELECT … FOR UPDATE`: one orchestrator at a time decides for a run.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator
from typing import Any

from store.database import Database

SCHEMA = """
CREATE TABLE IF NOT EXISTS nnt_run_record (
    simulation_id uuid PRIMARY KEY,
    spec jsonb NOT NULL,
    state text NOT NULL DEFAULT 'queued',
    host text,
    runtime text,
    pid integer,
    container text,
    message text NOT NULL DEFAULT '',
    reason text NOT NULL DEFAULT '',
    starts jsonb NOT NULL DEFAULT '[]',
    checkpoint_epoch integer NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS nnt_run_record_active ON nnt_run_record (state, host);
CREATE TABLE IF NOT EXISTS nnt_command_claim (
    command_id uuid PRIMARY KEY,
    host text NOT NULL,
    done boolean NOT NULL DEFAULT false,
    at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS nnt_orchestrator_host (
    host text PRIMARY KEY,
    seen_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS nnt_blob (
    name text NOT NULL,
    part integer NOT NULL,
    data bytea NOT NULL,
    PRIMARY KEY (name, part)
);
-- Datasets and checkpoints are compressed already (npz, zip): no second try at it.
ALTER TABLE nnt_blob ALTER COLUMN data SET STORAGE EXTERNAL;
"""
# The lifecycle columns a RunState carries (orchestrator/rundirs.py).
STATE_COLUMNS = (
    "state", "host", "runtime", "pid", "container", "message", "reason", "starts",
    "checkpoint_epoch",
)  # fmt: skip
SCHEMA_LOCK = 0x6E6E7472  # pg_advisory_xact_lock key: one orchestrator creates the tables


TABLES = ("nnt_run_record", "nnt_command_claim", "nnt_orchestrator_host", "nnt_blob")
# What a least-privileged orchestrator role needs (docs/security.md): rows of these, no DDL.
GRANTS = f"GRANT SELECT, INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO {{role}}"


def ensure(db: Database) -> None:
    """Create the shared record's tables once (concurrent starts wait for the first); a role
    with rights on their rows only (GRANTS) finds them made and needs no more."""
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM unnest(%s::text[]) t WHERE to_regclass(t) IS NULL",
                    (list(TABLES),))  # fmt: skip
        row = cur.fetchone()
    if row is not None and row[0] == 0:
        return
    with db.transaction(), db.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        cur.execute(SCHEMA)


class RunRecords:
    """Typed reads and writes of `nnt_run_record`, `nnt_command_claim`, `nnt_orchestrator_host`."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def ensure(self) -> None:
        """Create the tables once (concurrent starts wait for the first)."""
        ensure(self.db)

    # ---- records ------------------------------------------------------------------------------

    def add(self, simulation_id: uuid.UUID, spec_json: str) -> None:
        """Record a new simulation as queued (a redelivered create leaves the row as it is)."""
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO nnt_run_record (simulation_id, spec) VALUES (%s, %s::jsonb) "
                "ON CONFLICT (simulation_id) DO NOTHING",
                (simulation_id, spec_json),
            )

    def spec(self, simulation_id: uuid.UUID) -> str | None:
        """The spec's JSON, or None when the simulation is not recorded."""
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT spec::text FROM nnt_run_record WHERE simulation_id = %s", (simulation_id,)
            )
            row = cur.fetchone()
        return row[0] if row else None

    def set_spec(self, simulation_id: uuid.UUID, spec_json: str) -> None:
        """Replace the spec (the run's limits as of its start)."""
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE nnt_run_record SET spec = %s::jsonb, updated_at = now() "
                "WHERE simulation_id = %s",
                (spec_json, simulation_id),
            )

    def state(self, simulation_id: uuid.UUID) -> dict[str, Any] | None:
        """The lifecycle columns, or None when the simulation is not recorded."""
        cols = ", ".join(STATE_COLUMNS)
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT {cols}, extract(epoch FROM updated_at) FROM nnt_run_record "  # noqa: S608
                "WHERE simulation_id = %s",
                (simulation_id,),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return {**dict(zip(STATE_COLUMNS, row[:-1], strict=True)), "at": float(row[-1])}

    def set_state(self, simulation_id: uuid.UUID, values: dict[str, Any]) -> None:
        """Write the lifecycle columns given (others keep their values)."""
        values = {k: v for k, v in values.items() if k in STATE_COLUMNS}
        if "starts" in values:
            values["starts"] = json.dumps(values["starts"])
        sets = ", ".join(f"{k} = %({k})s" for k in values)
        with self.db.cursor() as cur:
            cur.execute(
                f"UPDATE nnt_run_record SET {sets}, updated_at = now() "  # noqa: S608
                "WHERE simulation_id = %(simulation_id)s",
                {**values, "simulation_id": simulation_id},
            )

    def checkpoint_epoch(self, simulation_id: uuid.UUID) -> int:
        """Epochs of the checkpoint kept in the database (0: none)."""
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT checkpoint_epoch FROM nnt_run_record WHERE simulation_id = %s",
                (simulation_id,),
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    @contextlib.contextmanager
    def lock(self, simulation_id: uuid.UUID) -> Iterator[None]:
        """Hold the run's row for one decision (every orchestrator honours it)."""
        with self.db.transaction(), self.db.cursor() as cur:
            cur.execute(
                "SELECT 1 FROM nnt_run_record WHERE simulation_id = %s FOR UPDATE",
                (simulation_id,),
            )
            yield

    def delete(self, simulation_id: uuid.UUID) -> None:
        """Forget the simulation."""
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM nnt_run_record WHERE simulation_id = %s", (simulation_id,))

    def ids(self, host: str | None = None, states: frozenset[str] | None = None) -> list[uuid.UUID]:
        """Recorded simulations, of one host and in some states when given."""
        where: list[str] = ["true"]
        args: list[Any] = []
        if host is not None:
            where.append("host = %s")
            args.append(host)
        if states is not None:
            where.append("state = ANY(%s)")
            args.append(sorted(states))
        with self.db.cursor() as cur:
            cur.execute(
                f"SELECT simulation_id FROM nnt_run_record WHERE {' AND '.join(where)} "  # noqa: S608
                "ORDER BY simulation_id",
                args,
            )
            return [row[0] for row in cur.fetchall()]

    def datasets_in_use(self, owner_id: int | None = None) -> set[str]:
        """File names (`<sha256>.<ext>`) of datasets recorded simulations (of one account,
        when given) still need."""
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT DISTINCT value FROM nnt_run_record, jsonb_each_text(spec->'datasets') "
                "WHERE value IS NOT NULL AND (%(owner)s::bigint IS NULL "
                "OR (spec->>'owner_id')::bigint = %(owner)s::bigint)",
                {"owner": owner_id},
            )
            return {row[0].rsplit("/", 1)[-1] for row in cur.fetchall()}

    # ---- claims: one answer per command ---------------------------------------------------------

    def claim(self, command_id: uuid.UUID, host: str) -> bool:
        """True for exactly one host per command id (and again for that host)."""
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO nnt_command_claim (command_id, host) VALUES (%s, %s) "
                "ON CONFLICT (command_id) DO NOTHING",
                (command_id, host),
            )
            cur.execute("SELECT host FROM nnt_command_claim WHERE command_id = %s", (command_id,))
            row = cur.fetchone()
        return row is not None and row[0] == host

    def mark_done(self, command_id: uuid.UUID, host: str) -> None:
        """Record that a shared-group command's work is complete."""
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO nnt_command_claim (command_id, host, done) VALUES (%s, %s, true) "
                "ON CONFLICT (command_id) DO UPDATE SET done = true",
                (command_id, host),
            )

    def is_done(self, command_id: uuid.UUID) -> bool:
        """True once `mark_done` ran for this id (on any host)."""
        with self.db.cursor() as cur:
            cur.execute("SELECT done FROM nnt_command_claim WHERE command_id = %s", (command_id,))
            row = cur.fetchone()
        return bool(row and row[0])

    def prune_claims(self, older_than_s: float = 7 * 86400) -> None:
        """Forget claims of commands older than a week."""
        with self.db.cursor() as cur:
            cur.execute(
                "DELETE FROM nnt_command_claim WHERE at < now() - make_interval(secs => %s)",
                (older_than_s,),
            )

    # ---- host leases ------------------------------------------------------------------------------

    def heartbeat(self, host: str) -> None:
        """This host is alive now."""
        with self.db.cursor() as cur:
            cur.execute(
                "INSERT INTO nnt_orchestrator_host (host, seen_at) VALUES (%s, now()) "
                "ON CONFLICT (host) DO UPDATE SET seen_at = now()",
                (host,),
            )

    def lost_runs(self, me: str, timeout_s: float) -> list[tuple[uuid.UUID, str, float]]:
        """Active runs of other hosts silent for `timeout_s`: (simulation, host, seconds silent).

        A host that never beat (an orchestrator older than leases) is not counted as lost.
        """
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT r.simulation_id, r.host, extract(epoch FROM now() - h.seen_at) "
                "FROM nnt_run_record r JOIN nnt_orchestrator_host h ON h.host = r.host "
                "WHERE r.state IN ('starting', 'running', 'paused') AND r.host <> %s "
                "AND h.seen_at < now() - make_interval(secs => %s) ORDER BY r.simulation_id",
                (me, timeout_s),
            )
            return [(row[0], row[1], float(row[2])) for row in cur.fetchall()]
