"""Create the time-series tables (store/sql/timeseries.sql): TimescaleDB hypertables when the
extension is loadable, native range partitions with BRIN indexes otherwise; and the per-run
summary tables, filled once from the rows already stored (store/summaries.py), and the
diagnosis tables (store/diagnoses.py: plain tables, the same in both forms). Idempotent.

TimescaleDB is used only when the server can load it: installed is not enough, its library
must be preloaded (`shared_preload_libraries`), or CREATE EXTENSION fails. A database whose
tables already took one form keeps it: hypertables need TimescaleDB (an error without it),
natively partitioned tables stay native. The queries of the web and the stream workers are
the same SQL in both forms.

Downsampling (docs/stream-processing.md) is TimescaleDB's own work on hypertables: the
continuous aggregate `nnt_batch_bucket` folds old batch points into buckets of steps, a
retention policy drops the raw ones once the aggregate can no longer need them, and jobs thin
and expire tensor values (store/sql/timescale.sql). On native partitions `nnt_batch_bucket`
is an empty view, and the stream workers run their own passes (store/maintenance.py).

The settings come from the caller (infra.timeseries reads them from the environment), and a
database that cannot take the form asked for raises SchemaError, whose text names the fix.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, Protocol

import psycopg
from psycopg.types.json import Jsonb

from schemas.downsampling import DownsamplingSetting
from store import summaries
from store.database import StoreError
from store.tables import PARTITIONED

log = logging.getLogger(__name__)

SQL = Path(__file__).parent / "sql" / "timeseries.sql"
TIMESCALE_SQL = Path(__file__).parent / "sql" / "timescale.sql"
SEGMENT_BY = "simulation_id"  # every chart and export reads one simulation at a time
PAYLOAD_JOB = "nnt_drop_tensor_payloads"
THIN_JOB = "nnt_thin_tensors"
PURGE_JOB = "nnt_purge_deleted_batch_buckets"
MAINTENANCE_PERIOD = "1 day"  # how often the retention jobs look for old chunks
BUCKETS = "nnt_batch_bucket"
# A batch point may reach the database this late and still be folded into its bucket: the
# Kafka log retention (infra/kafka.py), past which nothing can be replayed. The raw points
# are kept one one-day chunk longer, so a refresh never reads a range they left.
LATE_DAYS = 7
BUCKET_PERIOD = "1 hour"  # the aggregate's time bucket: what one late point refreshes
REFRESH_PERIOD = "15 minutes"
PURGE_PERIOD = "1 hour"


@dataclass(frozen=True)
class Hypertable:
    """How one table is chunked and turned columnar.

    `orderby` follows the chart queries within a simulation (DISTINCT ON / ORDER BY of
    store/metrics.py, store/batches.py, store/tensors.py) and, with the segment, covers the primary
    key, so a replayed row's ON CONFLICT check on a columnar chunk reads few batches.
    """

    chunk: str
    orderby: str
    compress_after: str
    segmentby: str = SEGMENT_BY


# Chunk sizes follow each table's volume: a chunk being written (with its indexes) should stay
# a small part of memory, and small tables should not split into thousands of tiny chunks.
HYPERTABLES = {
    # The bulk: every layer's kernel, bias, gradient and activation per logged epoch, from KBs
    # to MBs per epoch per run. One-day chunks; columnar only after 32 days, once the thinning
    # job (NNT_TENSOR_THIN_AGE_S, 30 days) has rewritten them as row-store rows.
    # Segmented by tensor too (bench/timescale.py): a chart or a download of one kernel then
    # decompresses that kernel's epochs only, not every tensor of the run (35 ms -> 11 ms for
    # one kernel, 0.69 s -> 0.20 s for all its epochs, same bytes per value).
    "nnt_tensor": Hypertable(
        "1 day", "epoch, chunk, at DESC", "32 days", f"{SEGMENT_BY}, layer_index, kind, variable"
    ),
    # One row per batch step and metric, kept raw about 8 days for the continuous aggregate
    # (LATE_DAYS): columnar after one, when charts read them only where not yet folded.
    "nnt_batch_metric": Hypertable("1 day", "metric, epoch, step, at DESC", "1 day"),
    # A CPU/memory sample per run every 5 s: thousands of small rows per run and day.
    "nnt_resource": Hypertable("7 days", "at", "7 days"),
    # A few rows per epoch (metrics) or per run (status): month-long chunks.
    "nnt_epoch_metric": Hypertable("30 days", "metric, epoch, at", "7 days"),
    "nnt_status_event": Hypertable("30 days", "at, status", "7 days"),
}


Want = Literal["auto", "on", "off"]


class SchemaError(StoreError):
    """The tables cannot take the form asked for (the message says why and what to do)."""


class Retention(Protocol):
    """How long TimescaleDB keeps tensor values and resource samples (infra.settings'
    TimescaleSettings; 0: for ever)."""

    @property
    def nnt_tensor_payload_retention_days(self) -> float:
        """Full tensor values older than this are dropped, statistics kept."""

    @property
    def nnt_resource_retention_days(self) -> float:
        """Resource samples older than this are dropped with their chunks."""


# Batch points folded per (simulation, metric, epoch, event time `at`) into buckets of
# {steps} steps, as the native pass does (store/maintenance.py REDUCE_BATCHES):
# the bucket's last value, its min and max (a point already reduced brings its own), at its
# last step. `at` is in the key, so all the points of one event land in one time bucket and
# a refreshed event is folded whole. Materialized only: readers add the raw points.
BUCKETS_SQL = f"""
CREATE MATERIALIZED VIEW {BUCKETS}
WITH (timescaledb.continuous, timescaledb.materialized_only = true) AS
SELECT time_bucket('{BUCKET_PERIOD}', at) AS period, simulation_id, metric, epoch, at,
       step / {{steps}} AS bucket, min(step) AS first_step, max(step) AS step,
       last(value, step) AS value, min(coalesce(value_min, value)) AS value_min,
       max(coalesce(value_max, value)) AS value_max
FROM nnt_batch_metric
GROUP BY period, simulation_id, metric, epoch, at, bucket
WITH NO DATA
"""
# Native partitions reduce in place: the same columns, never a row (store/batches.py
# reads both forms with one query).
NATIVE_BUCKETS_SQL = f"""
CREATE OR REPLACE VIEW {BUCKETS} AS
SELECT at AS period, simulation_id, metric, epoch, at, step AS bucket, step AS first_step,
       step, value, value_min, value_max
FROM nnt_batch_metric WHERE false
"""
BUCKETS_NOTE = "coarse batch points: buckets of {steps} steps (store.schema)"


@dataclass(frozen=True)
class Mode:
    """What the tables are: 'timescaledb' (with its version) or 'native', and why."""

    name: Literal["timescaledb", "native"]
    version: str | None
    reason: str

    def describe(self) -> str:
        """One line for logs: the mode, the version, the reason."""
        if self.name == "timescaledb":
            return f"TimescaleDB {self.version} hypertables"
        return f"native partitioning ({self.reason})"


def apply(
    database_url: str,
    want: Want,
    retention: Retention,
    downsampling: DownsamplingSetting,
    months_ahead: int = 3,
) -> Mode:
    """Create or complete the schema; returns the form the tables took, and why.

    `want`: 'auto' (TimescaleDB when loadable), 'on' (SchemaError without it) or 'off'
    (native partitioning, unless the tables are hypertables already).
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        mode = detect(conn, want)
        timescale = mode.name == "timescaledb"
        conn.execute(
            SQL.read_text().replace(
                "{partition_clause}", "" if timescale else "PARTITION BY RANGE (at)"
            )
        )
        for table in PARTITIONED:
            if timescale:
                _hypertable(conn, table, HYPERTABLES[table])
            else:
                _partitions(conn, table, months_ahead)
        if timescale:
            _retention(conn, retention)
            _batch_buckets(conn, downsampling)
            _thinning(conn, downsampling)
        else:
            _external_payloads(conn)
            conn.execute(NATIVE_BUCKETS_SQL)
        if summaries.backfill(conn):
            log.info("per-run summaries filled from the stored rows (store/summaries.py)")
    log.info("time-series tables: %s", mode.describe())
    return mode


def detect(conn: psycopg.Connection, want: Want = "auto") -> Mode:
    """Which form the tables take in this database (see the module docstring).

    `want`: 'auto', 'on' (SchemaError when TimescaleDB cannot be used) or 'off'. Creates the
    extension when it is to be used.
    """
    layout = _layout(conn)
    if layout == "partitioned":
        if want == "on":
            raise SchemaError(
                "NNT_TIMESCALEDB=on, but this database's time-series tables were created with "
                "native partitioning; they stay so (use a new database for TimescaleDB)"
            )
        return Mode("native", None, "the tables were created natively partitioned")
    if want == "off" and layout != "hypertable":
        return Mode("native", None, "NNT_TIMESCALEDB=off")
    version, why = _loadable(conn)
    if version:
        return Mode("timescaledb", version, why)
    if layout == "hypertable" or want == "on":
        raise SchemaError(f"the time-series tables need TimescaleDB, but {why}")
    return Mode("native", None, why)


def _layout(conn: psycopg.Connection) -> str | None:
    """'hypertable', 'partitioned', 'plain' or None (no table yet), from nnt_tensor."""
    row = conn.execute(
        "SELECT c.relkind FROM pg_class c WHERE c.oid = to_regclass('nnt_tensor')"
    ).fetchone()
    if row is None:
        return None
    if row[0] == "p":
        return "partitioned"
    if not _has_extension(conn):
        return "plain"
    hyper = conn.execute(
        "SELECT 1 FROM _timescaledb_catalog.hypertable "
        "WHERE schema_name = current_schema() AND table_name = 'nnt_tensor'"
    ).fetchone()
    return "hypertable" if hyper else "plain"


def _has_extension(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return row is not None


def _loadable(conn: psycopg.Connection) -> tuple[str | None, str]:
    """TimescaleDB's version once its extension exists in this database, or None and why."""
    available = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if available is None:
        return None, "the server has no timescaledb extension"
    preload = conn.execute("SELECT current_setting('shared_preload_libraries')").fetchone()
    libraries = [lib.strip().strip('"') for lib in str(preload[0] if preload else "").split(",")]
    if "timescaledb" not in libraries:
        return None, (
            "timescaledb is installed but not preloaded: start the server with "
            "shared_preload_libraries = 'timescaledb'"
        )
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, f"CREATE EXTENSION timescaledb failed: {first}"
    row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
    version = row.fetchone()
    return (str(version[0]) if version else None), "loadable"


def _hypertable(conn: psycopg.Connection, table: str, spec: Hypertable) -> None:
    """Hypertable on `at`, its chunk size, columnstore settings and policy (each only changed
    when it differs, so a second apply() does nothing)."""
    conn.execute(
        "SELECT create_hypertable(%s::regclass, 'at', chunk_time_interval => %s::interval, "
        "if_not_exists => TRUE, migrate_data => TRUE)",
        (table, spec.chunk),
    )
    # Older schemas chunked every table by 7 days: new chunks take the size meant for it.
    conn.execute("SELECT set_chunk_time_interval(%s::regclass, %s::interval)", (table, spec.chunk))
    current = conn.execute(
        "SELECT segmentby, orderby FROM timescaledb_information.hypertable_compression_settings "
        "WHERE hypertable = %s::regclass",
        (table,),
    ).fetchone()
    if current is None or current != (_orderby_text(spec.segmentby), _orderby_text(spec.orderby)):
        conn.execute(
            f"ALTER TABLE {table} SET (timescaledb.compress, "
            f"timescaledb.compress_segmentby = '{spec.segmentby}', "
            f"timescaledb.compress_orderby = '{spec.orderby}')"
        )
    _policy(conn, "policy_compression", table, "compress_after", spec.compress_after)


def _orderby_text(orderby: str) -> str:
    """The orderby as TimescaleDB's settings view shows it ('a,b,c DESC')."""
    return ",".join(part.strip() for part in orderby.split(","))


def _job(conn: psycopg.Connection, proc: str, table: str | None) -> tuple[int, dict] | None:
    row = conn.execute(
        "SELECT job_id, config FROM timescaledb_information.jobs "
        "WHERE proc_name = %s AND hypertable_name IS NOT DISTINCT FROM %s",
        (proc, table),
    ).fetchone()
    return (int(row[0]), dict(row[1] or {})) if row else None


def _same_interval(conn: psycopg.Connection, a: object, b: str) -> bool:
    if a is None:
        return False
    row = conn.execute("SELECT %s::interval = %s::interval", (str(a), b)).fetchone()
    return bool(row and row[0])


def _policy(conn: psycopg.Connection, proc: str, table: str, key: str, age: str | None) -> None:
    """A columnstore or retention policy of `table` at `age` (None: none), replaced when the
    age changed. Its first run waits one period, like every later one, so a database never
    starts by rewriting data that was just written (tests write months-old timestamps)."""
    job = _job(conn, proc, table)
    if job and age and _same_interval(conn, job[1].get(key), age):
        return
    kind = "compression" if proc == "policy_compression" else "retention"
    if job:
        conn.execute(f"SELECT remove_{kind}_policy(%s::regclass, if_exists => TRUE)", (table,))
    if not age:
        return
    period = "12 hours" if kind == "compression" else MAINTENANCE_PERIOD
    conn.execute(
        f"SELECT add_{kind}_policy(%s::regclass, {key} => %s::interval, "
        "schedule_interval => %s::interval, initial_start => now() + %s::interval)",
        (table, age, period, period),
    )


def _days(value: float) -> str | None:
    return f"{value:g} days" if value > 0 else None


def _retention(conn: psycopg.Connection, s: Retention) -> None:
    """Resource samples go with their chunks; tensor values go but their statistics stay
    (store/sql/timescale.sql), so retention never takes a chart with it."""
    _policy(
        conn, "policy_retention", "nnt_resource", "drop_after", _days(s.nnt_resource_retention_days)
    )
    conn.execute(TIMESCALE_SQL.read_text())
    age = _days(s.nnt_tensor_payload_retention_days)
    _custom_job(conn, PAYLOAD_JOB, MAINTENANCE_PERIOD, {"drop_after": age} if age else None)


def _thinning(conn: psycopg.Connection, d: DownsamplingSetting) -> None:
    """Tensor values older than the thinning age go unless their epoch is a multiple of
    NNT_TENSOR_KEEP_EVERY (the job works whole one-day chunks: up to a day later)."""
    config = {
        "thin_after": _seconds(d.nnt_tensor_thin_age_s),
        "keep_every": d.nnt_tensor_keep_every,
    }
    _custom_job(conn, THIN_JOB, MAINTENANCE_PERIOD, config)


def _custom_job(
    conn: psycopg.Connection, proc: str, period: str, config: dict[str, object] | None
) -> None:
    """A job of ours running `proc` with `config` (None: no job), replaced when the config
    changed; its first run waits one period, as the policies' do."""
    job = _job(conn, proc, None)
    if job and config and job[1] == config:
        return
    if job:
        conn.execute("SELECT delete_job(%s)", (job[0],))
    if config:
        conn.execute(
            "SELECT add_job(%s::regproc, %s::interval, config => %s::jsonb, "
            "initial_start => now() + %s::interval)",
            (proc, period, Jsonb(config), period),
        )


def _batch_buckets(conn: psycopg.Connection, d: DownsamplingSetting) -> None:
    """The continuous aggregate of batch points and its policies: refreshed up to the raw age,
    back LATE_DAYS further for late points; raw points dropped once past that window; the
    aggregate columnar, per simulation, past it too; coarse points of deleted runs purged."""
    raw_age = _seconds(d.nnt_batch_raw_age_s)
    window = f"{LATE_DAYS} days {raw_age}"
    past = f"{LATE_DAYS + 1} days {raw_age}"
    if conn.execute("SELECT to_regclass(%s)", (BUCKETS,)).fetchone() == (None,):
        _create_buckets(conn, d, raw_age)
    else:
        _check_bucket_steps(conn, d.nnt_batch_bucket_steps)
    job = _job(conn, "policy_refresh_continuous_aggregate", BUCKETS)
    same = job and all(
        _same_interval(conn, job[1].get(key), age)
        for key, age in (("start_offset", window), ("end_offset", raw_age))
    )
    if not same:
        if job:
            conn.execute(
                "SELECT remove_continuous_aggregate_policy(%s, if_exists => TRUE)", (BUCKETS,)
            )
        conn.execute(
            "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval, "
            "end_offset => %s::interval, schedule_interval => %s::interval, "
            "initial_start => now() + %s::interval)",
            (BUCKETS, window, raw_age, REFRESH_PERIOD, REFRESH_PERIOD),
        )
    _policy(conn, "policy_retention", "nnt_batch_metric", "drop_after", past)
    _policy(conn, "policy_compression", BUCKETS, "compress_after", past)
    _custom_job(conn, PURGE_JOB, PURGE_PERIOD, {"deleted_within": past})


def _create_buckets(conn: psycopg.Connection, d: DownsamplingSetting, raw_age: str) -> None:
    """Create the aggregate, columnar per simulation, and fold the points already stored
    (those of a database from before it, whatever their age) up to the raw age."""
    steps = d.nnt_batch_bucket_steps
    conn.execute(BUCKETS_SQL.format(steps=steps))
    conn.execute(f"COMMENT ON VIEW {BUCKETS} IS '{BUCKETS_NOTE.format(steps=steps)}'")
    conn.execute(
        f"ALTER MATERIALIZED VIEW {BUCKETS} SET (timescaledb.compress = true, "
        f"timescaledb.compress_segmentby = '{SEGMENT_BY}', "
        "timescaledb.compress_orderby = 'metric, epoch, step, at DESC')"
    )
    conn.execute(
        "CALL refresh_continuous_aggregate(%s, NULL, now() - %s::interval)", (BUCKETS, raw_age)
    )


def _check_bucket_steps(conn: psycopg.Connection, steps: int) -> None:
    """The aggregate keeps the bucket size it was created with: a new size would refold only
    the points still raw, and lose the older buckets. A changed setting is reported."""
    row = conn.execute("SELECT obj_description(%s::regclass, 'pg_class')", (BUCKETS,)).fetchone()
    found = re.search(r"buckets of (\d+) steps", str(row[0] if row else ""))
    if found and int(found[1]) != steps:
        log.warning(
            "NNT_BATCH_BUCKET_STEPS=%d, but %s folds buckets of %s steps and keeps them (a new "
            "database takes the new size)",
            steps,
            BUCKETS,
            found[1],
        )


def _seconds(value: float) -> str:
    """An interval literal of `value` seconds in the largest whole unit (no exponent)."""
    for unit, size in (("days", 86400), ("hours", 3600), ("minutes", 60)):
        if value >= size and value % size == 0:
            count = int(value // size)
            return f"{count} {unit if count > 1 else unit[:-1]}"
    return f"{value:.6f}".rstrip("0").rstrip(".") + " seconds"


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
    """Native partitions keep `data` uncompressed by PostgreSQL (EXTERNAL) like their parent;
    TimescaleDB's chunks copy it from the hypertable themselves."""
    parts = conn.execute(
        "SELECT c.oid::regclass::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'data' "
        "WHERE i.inhparent = 'nnt_tensor'::regclass AND a.attstorage <> 'e'"
    ).fetchall()
    for (name,) in parts:
        conn.execute(f"ALTER TABLE {name} ALTER COLUMN data SET STORAGE EXTERNAL")
