"""Create the time-series tables: TimescaleDB hypertables when the extension exists, native
range partitions with BRIN indexes otherwise. Idempotent."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import psycopg

log = logging.getLogger(__name__)

SQL = Path(__file__).parent / "sql" / "timeseries.sql"
PARTITIONED = (
    "nnt_epoch_metric",
    "nnt_batch_metric",
    "nnt_tensor",
    "nnt_status_event",
    "nnt_resource",
)


def has_timescale(conn: psycopg.Connection) -> bool:
    """True when the timescaledb extension is installed or can be."""
    row = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    return row is not None


def apply(database_url: str, months_ahead: int = 3) -> str:
    """Create or complete the schema; returns 'timescaledb' or 'native'."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        timescale = has_timescale(conn)
        if timescale:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            SQL.read_text().replace(
                "{partition_clause}", "" if timescale else "PARTITION BY RANGE (at)"
            )
        )
        for table in PARTITIONED:
            if timescale:
                _hypertable(conn, table)
            else:
                _partitions(conn, table, months_ahead)
        _external_payloads(conn)
    return "timescaledb" if timescale else "native"


def _hypertable(conn: psycopg.Connection, table: str) -> None:
    conn.execute(
        f"SELECT create_hypertable('{table}', 'at', if_not_exists => TRUE, migrate_data => TRUE)"
    )
    segment = "simulation_id"
    conn.execute(
        f"ALTER TABLE {table} SET (timescaledb.compress, timescaledb.compress_segmentby = '{segment}')"
    )
    conn.execute(
        f"SELECT add_compression_policy('{table}', INTERVAL '7 days', if_not_exists => TRUE)"
    )


def _partitions(conn: psycopg.Connection, table: str, months_ahead: int) -> None:
    """Monthly partitions from last month to `months_ahead`, a default partition, BRIN on time."""
    now = datetime.now(UTC)
    year, month = now.year, now.month - 1
    for _ in range(months_ahead + 2):
        if month == 0:
            year, month = year - 1, 12
        start = f"{year:04d}-{month:02d}-01"
        ny, nm = (year + 1, 1) if month == 12 else (year, month + 1)
        end = f"{ny:04d}-{nm:02d}-01"
        conn.execute(
            f"CREATE TABLE IF NOT EXISTS {table}_{year:04d}{month:02d} PARTITION OF {table} "
            f"FOR VALUES FROM ('{start}') TO ('{end}')"
        )
        year, month = ny, nm
    conn.execute(f"CREATE TABLE IF NOT EXISTS {table}_default PARTITION OF {table} DEFAULT")
    conn.execute(f"CREATE INDEX IF NOT EXISTS {table}_at_brin ON {table} USING brin (at)")


def _external_payloads(conn: psycopg.Connection) -> None:
    """Every existing nnt_tensor partition keeps `data` uncompressed by PostgreSQL (EXTERNAL)."""
    parts = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'nnt_tensor'::regclass"
    ).fetchall()
    for (name,) in [("nnt_tensor",), *parts]:
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN data SET STORAGE EXTERNAL")
