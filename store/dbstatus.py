"""What the time-series tables are and who uses their space: every statement of
`nntracker db status` (infra/dbstatus.py renders the report).

It reads the database directly (an operator's command, with DATABASE_URL's credentials or the
local stack's), never through the REST API.

Exactness, chosen to stay cheap on a large database (no value is decompressed or detoasted):
- Rows per simulation and table are exact (columnstore batches count from their metadata).
- Table sizes are PostgreSQL's and TimescaleDB's own (heap, TOAST and indexes).
- A table's bytes are shared among its simulations in proportion to the bytes their rows hold
  (`pg_column_size` of every column, which reads a TOAST pointer, not the value, plus the row
  header): in the row store over its rows, in the columnstore over each simulation's segments
  (TimescaleDB compresses every simulation apart: segmentby `simulation_id`). Indexes and page
  overhead follow the same shares. A simulation's uncompressed size is its row-store bytes
  plus its share of what the columnstore held before compression.
- Where TimescaleDB's catalog does not name each chunk's compressed relation (before 2.19,
  whose compression_settings gained compress_relid), the shares are the simulations' rows
  instead ("row share"). The per-segment reading is verified on 2.29.
- Native partitioning has no columnstore: its bytes are raw, and they are reported as such.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import psycopg
from psycopg import sql

from store.database import StoreError
from store.schema import SEGMENT_BY
from store.tables import PARTITIONED

ROW_HEADER = 28  # a heap tuple's header (23, aligned to 24) and its line pointer (4)
NO_SIMULATION = "(no simulation row)"  # data of a deleted run, or a database without the web

Estimate = Literal["segments", "row share", "raw"]

# The server, the extension and whether the schema is there.
SERVER_SQL = """
SELECT current_setting('server_version'),
       (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'),
       pg_database_size(current_database()),
       to_regclass('nnt_tensor') IS NOT NULL
"""
# Which of the tables are hypertables (only asked when the extension exists).
HYPERTABLES_SQL = """
SELECT hypertable_name FROM timescaledb_information.hypertables
WHERE hypertable_schema = current_schema()
"""
# Continuous aggregates per simulation (store.schema's nnt_batch_bucket): the hypertable
# each materializes into, measured like a table under the aggregate's name.
AGGREGATES_SQL = """
SELECT ca.view_name, ca.materialization_hypertable_schema, ca.materialization_hypertable_name
FROM timescaledb_information.continuous_aggregates ca
JOIN pg_namespace n ON n.nspname = ca.materialization_hypertable_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ca.materialization_hypertable_name
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = %(segment)s AND NOT a.attisdropped
WHERE ca.view_schema = current_schema()
ORDER BY 1
"""
# A hypertable's whole size and what its columnstore chunks took before and after compression.
HYPERTABLE_SIZE_SQL = """
SELECT coalesce((SELECT total_bytes FROM hypertable_detailed_size(%(table)s::regclass)), 0),
       coalesce(s.before_compression_total_bytes, 0),
       coalesce(s.after_compression_total_bytes, 0)
FROM (SELECT 1) one
LEFT JOIN hypertable_compression_stats(%(table)s::regclass) s ON true
"""
# A native (partitioned or plain) table's whole size.
NATIVE_SIZE_SQL = """
SELECT coalesce(sum(pg_total_relation_size(relid)), 0)
FROM pg_partition_tree(%(table)s::regclass)
"""
# Does this TimescaleDB name each chunk's compressed relation (2.19 and later)?
COMPRESS_RELID_SQL = """
SELECT EXISTS (SELECT 1 FROM pg_attribute
               WHERE attrelid = to_regclass('_timescaledb_catalog.compression_settings')
                 AND attname = 'compress_relid' AND NOT attisdropped)
"""
# Every chunk of a hypertable and its compressed relation when it has one: (oid, schema, name).
CHUNKS_SQL = """
SELECT c.oid, n.nspname, c.relname, z.oid, zn.nspname, z.relname
FROM timescaledb_information.chunks ch
JOIN pg_namespace n ON n.nspname = ch.chunk_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = ch.chunk_name
LEFT JOIN _timescaledb_catalog.compression_settings cs ON cs.relid = c.oid
LEFT JOIN pg_class z ON z.oid = cs.compress_relid
LEFT JOIN pg_namespace zn ON zn.oid = z.relnamespace
WHERE ch.hypertable_schema = %(schema)s AND ch.hypertable_name = %(name)s
ORDER BY c.oid
"""
# A table of the current schema: (oid, schema, name).
TABLE_SQL = """
SELECT c.oid, n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(table)s::regclass
"""
# The columns of some relations, in order.
COLUMNS_SQL = """
SELECT attrelid, array_agg(attname::text ORDER BY attnum) FROM pg_attribute
WHERE attrelid = ANY(%(oids)s) AND attnum > 0 AND NOT attisdropped GROUP BY 1
"""
# Rows per simulation, for the row-share estimate (cheap on columnstore chunks too).
ROWS_SQL = "SELECT {segment}, count(*) FROM {rel} GROUP BY 1"
# Rows and bytes per simulation of one relation's row store (ONLY: a chunk's own heap, not
# its columnstore) or of one compressed relation (a row there is a batch of up to 1,000 rows).
ROWSTORE_PART_SQL = "SELECT {segment}, count(*), sum({weight}) FROM ONLY {rel} GROUP BY 1"
NATIVE_PART_SQL = "SELECT {segment}, count(*), sum({weight}) FROM {rel} GROUP BY 1"
COLUMNSTORE_PART_SQL = (
    "SELECT {segment}, sum(_ts_meta_count), sum({weight}) FROM ONLY {rel} GROUP BY 1"
)
# Names and owners of the simulations (the web's tables; absent in a bare time-series schema).
WEB_TABLES_SQL = """
SELECT to_regclass('nnt_simulation') IS NOT NULL, to_regclass('auth_user') IS NOT NULL
"""
OWNERS_SQL = """
SELECT s.id, s.name, coalesce({username}, nullif(s.owner_name, ''))
FROM nnt_simulation s {join}
WHERE s.id = ANY(%(ids)s)
"""


@dataclass
class Usage:
    """Rows and bytes of some data: `bytes` on disk (heap, TOAST, indexes), `raw_bytes` what
    it takes uncompressed, `columnstore_*` the part of it in compressed chunks (None: native)."""

    rows: int = 0
    bytes: int = 0
    raw_bytes: int = 0
    columnstore_rows: int | None = None
    columnstore_bytes: int | None = None

    def add(self, other: Usage) -> None:
        """Sum another's figures into this one (columnstore figures stay None in native)."""
        self.rows += other.rows
        self.bytes += other.bytes
        self.raw_bytes += other.raw_bytes
        if other.columnstore_rows is not None:
            self.columnstore_rows = (self.columnstore_rows or 0) + other.columnstore_rows
        if other.columnstore_bytes is not None:
            self.columnstore_bytes = (self.columnstore_bytes or 0) + other.columnstore_bytes


@dataclass
class TableUsage(Usage):
    """One time-series table."""

    table: str = ""


@dataclass
class SimulationUsage(Usage):
    """One simulation's rows in every time-series table, with its owner's name."""

    simulation_id: str = ""
    name: str | None = None
    owner: str = NO_SIMULATION
    tables: dict[str, Usage] = field(default_factory=dict)


@dataclass
class UserUsage(Usage):
    """Everything of one owner's simulations."""

    owner: str = ""
    simulations: int = 0


@dataclass
class Status:
    """The report: server, mode, sizes per table, simulation and user (largest first)."""

    database: str
    server_version: str
    mode: Literal["timescaledb", "native"]
    timescaledb_version: str | None
    estimate: Estimate
    database_bytes: int
    total: Usage
    tables: list[TableUsage]
    simulations: list[SimulationUsage]
    users: list[UserUsage]

    def as_json(self, top: int = 0) -> dict[str, Any]:
        """A JSON-ready dict; `top` > 0 keeps the largest simulations and users only."""
        out = asdict(self)
        if top > 0:
            out["simulations"] = out["simulations"][:top]
            out["users"] = out["users"][:top]
        return out


@dataclass
class _Part:
    """One simulation's rows and byte weight in one table's row store or columnstore."""

    rows: int = 0
    weight: float = 0.0


class Unreachable(StoreError):
    """The database does not answer (the message is psycopg's first line)."""


class NoTables(StoreError):
    """The database has no time-series tables yet."""


def collect(url: str, database: str, connect_timeout: float = 5) -> Status:
    """Read the whole report from the database at `url` (named `database` in it)."""
    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=int(connect_timeout))
    except psycopg.Error as exc:
        raise Unreachable(_first_line(exc)) from None
    with conn:
        return read(conn, database)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read(conn: psycopg.Connection, database: str) -> Status:
    """The report of the database on `conn`, named `database` in it; NoTables before the
    schema is there."""
    row = conn.execute(SERVER_SQL).fetchone()
    assert row is not None
    server_version, ts_version, database_bytes, has_schema = row
    if not has_schema:
        raise NoTables(f"the database at {database} has no time-series tables yet")
    hyper = {r[0] for r in conn.execute(HYPERTABLES_SQL).fetchall()} if ts_version else set()
    timescale = "nnt_tensor" in hyper
    estimate: Estimate = "raw"
    if timescale:
        named = conn.execute(COMPRESS_RELID_SQL).fetchone()
        estimate = "segments" if named and named[0] else "row share"
    tables: list[TableUsage] = []
    per_sim: dict[str, dict[str, Usage]] = {}
    schema = _current_schema(conn)
    # (name reported, hypertable's schema and name; None: a native table)
    sources: list[tuple[str, tuple[str, str] | None]] = [
        (t, (schema, t) if t in hyper else None) for t in PARTITIONED
    ]
    if timescale:
        found = conn.execute(AGGREGATES_SQL, {"segment": SEGMENT_BY}).fetchall()
        sources += [(str(view), (str(s), str(n))) for view, s, n in found]
    for table, hypertable in sources:
        if hypertable is None:
            usage, sims = _native(conn, table)
        else:
            usage, sims = _hypertable(conn, table, *hypertable, estimate)
        tables.append(usage)
        for sid, sim_usage in sims.items():
            per_sim.setdefault(sid, {})[table] = sim_usage
    simulations = _simulations(conn, per_sim)
    total = Usage(
        columnstore_rows=0 if estimate == "segments" else None,
        columnstore_bytes=0 if timescale else None,
    )
    for t in tables:
        total.add(t)
    return Status(
        database=database,
        server_version=str(server_version),
        mode="timescaledb" if timescale else "native",
        timescaledb_version=str(ts_version) if ts_version else None,
        estimate=estimate,
        database_bytes=int(database_bytes),
        total=total,
        tables=tables,
        simulations=simulations,
        users=_users(simulations),
    )


Rel = tuple[int, str, str]  # oid, schema, name


def _weight(columns: list[str]) -> sql.Composable:
    """The bytes one row holds: every column's stored size plus the row header."""
    sizes = [sql.SQL("coalesce(pg_column_size({}), 0)").format(sql.Identifier(c)) for c in columns]
    return sql.SQL(" + ").join([sql.Literal(ROW_HEADER), *sizes])


def _parts(conn: psycopg.Connection, template: str, rels: Sequence[Rel]) -> dict[str, _Part]:
    """Rows and weights per simulation over some relations, in one UNION ALL statement."""
    out: dict[str, _Part] = {}
    if not rels:
        return out
    found = conn.execute(COLUMNS_SQL, {"oids": [oid for oid, _, _ in rels]}).fetchall()
    columns = {int(oid): list(names) for oid, names in found}
    selects = [
        sql.SQL(template).format(
            segment=sql.Identifier(SEGMENT_BY),
            weight=_weight(columns[oid]),
            rel=sql.Identifier(schema, name),
        )
        for oid, schema, name in rels
    ]
    for sid, rows, weight in conn.execute(sql.SQL(" UNION ALL ").join(selects)).fetchall():
        part = out.setdefault(str(sid), _Part())
        part.rows += int(rows or 0)
        part.weight += float(weight or 0)
    return out


def _share(parts: dict[str, _Part], total_bytes: float) -> dict[str, float]:
    """`total_bytes` shared among the simulations in proportion to their weights."""
    weight = sum(p.weight for p in parts.values())
    if weight <= 0:
        return dict.fromkeys(parts, 0.0)
    return {sid: total_bytes * p.weight / weight for sid, p in parts.items()}


def _native(conn: psycopg.Connection, table: str) -> tuple[TableUsage, dict[str, Usage]]:
    """A native table: raw bytes only, shared by the bytes of each simulation's rows."""
    row = conn.execute(NATIVE_SIZE_SQL, {"table": table}).fetchone()
    size = int(row[0]) if row else 0
    found = conn.execute(TABLE_SQL, {"table": table}).fetchone()
    assert found is not None
    parts = _parts(conn, NATIVE_PART_SQL, [(int(found[0]), found[1], found[2])])
    shares = _share(parts, size)
    sims = {
        sid: Usage(rows=p.rows, bytes=round(shares[sid]), raw_bytes=round(shares[sid]))
        for sid, p in parts.items()
    }
    rows = sum(p.rows for p in parts.values())
    return TableUsage(rows=rows, bytes=size, raw_bytes=size, table=table), sims


def _current_schema(conn: psycopg.Connection) -> str:
    row = conn.execute("SELECT current_schema()").fetchone()
    return str(row[0]) if row else "public"


def _hypertable(
    conn: psycopg.Connection, table: str, schema: str, name: str, estimate: Estimate
) -> tuple[TableUsage, dict[str, Usage]]:
    """A hypertable (`schema`.`name`, reported as `table`): its row store and its
    columnstore, each shared by simulation."""
    qualified = sql.Identifier(schema, name).as_string(conn)
    row = conn.execute(HYPERTABLE_SIZE_SQL, {"table": qualified}).fetchone()
    assert row is not None
    total, before, after = (int(v or 0) for v in row)
    rowstore_bytes = max(total - after, 0)
    if estimate == "row share":
        counted = sql.Identifier(schema, name)
        return _hypertable_by_rows(conn, table, counted, total, rowstore_bytes + before, after)
    chunks = conn.execute(CHUNKS_SQL, {"schema": schema, "name": name}).fetchall()
    rowstore = _parts(conn, ROWSTORE_PART_SQL, [(int(c[0]), c[1], c[2]) for c in chunks])
    compressed = [(int(c[3]), c[4], c[5]) for c in chunks if c[3] is not None]
    columnstore = _parts(conn, COLUMNSTORE_PART_SQL, compressed)
    # A columnstore chunk keeps an empty heap and its indexes: with no row-store rows left,
    # those bytes follow the columnstore's shares (and the other way round).
    row_share = _share(rowstore or columnstore, rowstore_bytes)
    segments = columnstore or rowstore
    disk_share, raw_share = _share(segments, after), _share(segments, before)
    sims: dict[str, Usage] = {}
    for sid in rowstore.keys() | columnstore.keys():
        r, c = rowstore.get(sid, _Part()), columnstore.get(sid, _Part())
        in_rows, packed = row_share.get(sid, 0.0), disk_share.get(sid, 0.0)
        sims[sid] = Usage(
            rows=r.rows + c.rows,
            bytes=round(in_rows + packed),
            raw_bytes=round(in_rows + raw_share.get(sid, 0.0)),
            columnstore_rows=c.rows,
            columnstore_bytes=round(packed),
        )
    usage = TableUsage(
        rows=sum(s.rows for s in sims.values()),
        bytes=total,
        raw_bytes=rowstore_bytes + before,
        columnstore_rows=sum(c.rows for c in columnstore.values()),
        columnstore_bytes=after,
        table=table,
    )
    return usage, sims


def _hypertable_by_rows(
    conn: psycopg.Connection,
    table: str,
    rel: sql.Identifier,
    total: int,
    raw: int,
    after: int,
) -> tuple[TableUsage, dict[str, Usage]]:
    """Older TimescaleDB: bytes shared by rows (which rows are columnar is not known)."""
    query = sql.SQL(ROWS_SQL).format(segment=sql.Identifier(SEGMENT_BY), rel=rel)
    counts = {str(sid): int(n) for sid, n in conn.execute(query).fetchall()}
    rows = sum(counts.values())
    sims = {
        sid: Usage(rows=n, bytes=round(total * n / rows), raw_bytes=round(raw * n / rows))
        for sid, n in counts.items()
    }
    usage = TableUsage(rows=rows, bytes=total, raw_bytes=raw, columnstore_bytes=after, table=table)
    return usage, sims


def _simulations(
    conn: psycopg.Connection, per_sim: dict[str, dict[str, Usage]]
) -> list[SimulationUsage]:
    """Every simulation with rows, its name and owner, largest first."""
    owners = _owners(conn, list(per_sim))
    out = []
    for sid, tables in per_sim.items():
        name, owner = owners.get(sid, (None, NO_SIMULATION))
        sim = SimulationUsage(simulation_id=sid, name=name, owner=owner, tables=tables)
        if any(t.columnstore_rows is not None for t in tables.values()):
            sim.columnstore_rows, sim.columnstore_bytes = 0, 0
        for usage in tables.values():
            sim.add(usage)
        out.append(sim)
    return sorted(out, key=lambda s: (-s.bytes, s.simulation_id))


def _owners(conn: psycopg.Connection, ids: Sequence[str]) -> dict[str, tuple[str | None, str]]:
    """simulation id -> (name, owner's username) from the web's tables, where they exist."""
    row = conn.execute(WEB_TABLES_SQL).fetchone()
    if not ids or not row or not row[0]:
        return {}
    username, join = sql.SQL("NULL"), sql.SQL("")
    if row[1]:
        username = sql.SQL("u.username")
        join = sql.SQL("LEFT JOIN auth_user u ON u.id = s.owner_id")
    query = sql.SQL(OWNERS_SQL).format(username=username, join=join)
    found = conn.execute(query, {"ids": list(ids)}).fetchall()
    return {str(sid): (name, owner or "(no owner)") for sid, name, owner in found}


def _users(simulations: list[SimulationUsage]) -> list[UserUsage]:
    """The simulations summed per owner, largest first."""
    users: dict[str, UserUsage] = {}
    for sim in simulations:
        user = users.setdefault(sim.owner, UserUsage(owner=sim.owner))
        if sim.columnstore_rows is not None and user.columnstore_rows is None:
            user.columnstore_rows, user.columnstore_bytes = 0, 0
        user.add(sim)
        user.simulations += 1
    return sorted(users.values(), key=lambda u: (-u.bytes, u.owner))
