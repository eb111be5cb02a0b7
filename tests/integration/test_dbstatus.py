"""`nntracker db status` on a real server: the mode and versions, and rows and bytes per table,
simulation and user against what was written, before and after TimescaleDB compresses the
chunks, continuous aggregates per simulation, and on a database forced to native partitioning
(raw bytes only). Tables other than the five written here (infra.timeseries' continuous
aggregate) are checked by their own test, not by the counts of the others."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import psycopg
import pytest

from client import cli
from infra import dbstatus
from store.tables import PARTITIONED, Row, Table
from tests.streamworker import WEB_TABLES
from tests.timeseries_data import new_database, run_rows, write


@dataclass
class Written:
    """What a test wrote: rows per simulation and table, and each simulation's owner."""

    rows: dict[uuid.UUID, dict[str, int]]
    owners: dict[uuid.UUID, str]

    def per_user(self) -> dict[str, tuple[int, int]]:
        """owner -> (simulations, rows)."""
        out: dict[str, tuple[int, int]] = {}
        for sim, tables in self.rows.items():
            sims, rows = out.get(self.owners[sim], (0, 0))
            out[self.owners[sim]] = (sims + 1, rows + sum(tables.values()))
        return out


def populate(url: str) -> Written:
    """Two users' simulations and one whose simulation row is gone, of different lengths."""
    alice, alice2, bob, gone = (uuid.uuid4() for _ in range(4))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WEB_TABLES.read_text())
        users = {}
        for name in ("alice", "bob"):
            row = conn.execute(
                "INSERT INTO auth_user (username) VALUES (%s) RETURNING id", (name,)
            ).fetchone()
            assert row is not None
            users[name] = row[0]
        for sim, owner, name in (
            (alice, "alice", "big"),
            (alice2, "alice", "small"),
            (bob, "bob", "b"),
        ):
            conn.execute(
                "INSERT INTO nnt_simulation (id, owner_id, owner_name, name) VALUES (%s, %s, %s, %s)",
                (sim, users[owner], owner, name),
            )
    written: dict[uuid.UUID, dict[str, int]] = {}
    for sim, epochs in ((alice, 8), (alice2, 2), (bob, 4), (gone, 1)):
        run: dict[Table, list[Row]] = run_rows(sim, epochs=epochs)
        write(url, run)
        written[sim] = {table.name: len(batch) for table, batch in run.items()}
    owners = {alice: "alice", alice2: "alice", bob: "bob", gone: dbstatus.NO_SIMULATION}
    return Written(written, owners)


def compress_all(url: str) -> None:
    """Every chunk of every hypertable into the columnstore."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in PARTITIONED:
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s) c",
                (table,),
            )


def written_tables(status: dbstatus.Status) -> list[dbstatus.TableUsage]:
    """The five time-series tables of the report, in their order."""
    return [u for u in status.tables if u.table in PARTITIONED]


def check_rows(status: dbstatus.Status, written: Written) -> None:
    """Rows per simulation and table, per table and per user, as written."""
    assert [u.table for u in written_tables(status)] == list(PARTITIONED)
    sims = {uuid.UUID(s.simulation_id): s for s in status.simulations}
    assert set(sims) == set(written.rows)
    for sim, tables in written.rows.items():
        assert {t: u.rows for t, u in sims[sim].tables.items() if t in PARTITIONED} == tables
        assert sims[sim].rows == sum(u.rows for u in sims[sim].tables.values())
        assert sims[sim].owner == written.owners[sim]
    for usage in written_tables(status):
        assert usage.rows == sum(t[usage.table] for t in written.rows.values()), usage.table
    got = {u.owner: (u.simulations, u.rows) for u in status.users}
    extra = {  # rows of other tables (a continuous aggregate's), the user's too
        o: sum(u.rows for s in status.simulations if s.owner == o
               for t, u in s.tables.items() if t not in PARTITIONED)
        for o in got
    }  # fmt: skip
    assert got == {o: (n, rows + extra[o]) for o, (n, rows) in written.per_user().items()}
    # largest first: alice's 8-epoch run, then alice (two runs) among the users
    assert [s.simulation_id for s in status.simulations][0] == str(next(iter(written.rows)))
    assert status.users[0].owner == "alice"
    assert status.simulations[0].name == "big"


def check_shares(status: dbstatus.Status) -> None:
    """Every table's bytes are shared among its simulations (up to rounding); an empty
    table's pages belong to nobody."""
    for usage in (u for u in status.tables if u.rows):
        shared = [s.tables[usage.table] for s in status.simulations if usage.table in s.tables]
        assert abs(sum(u.bytes for u in shared) - usage.bytes) <= len(shared), usage.table
        assert abs(sum(u.raw_bytes for u in shared) - usage.raw_bytes) <= len(shared)
        assert all(u.bytes > 0 for u in shared)


@pytest.fixture()
def ts_url(pg_url: str, timescaledb: str) -> str:
    """A new database with the TimescaleDB schema."""
    return new_database(pg_url, "nnt_status_ts", timescaledb=True)


def test_it_reports_timescaledb_rows_and_compressed_bytes_per_simulation_and_user(
    ts_url: str, timescaledb: str
) -> None:
    written = populate(ts_url)

    before = dbstatus.collect(ts_url)

    assert (before.mode, before.timescaledb_version, before.estimate) == (
        "timescaledb",
        timescaledb,
        "segments",
    )
    assert before.server_version.split(".")[0].isdigit()
    check_rows(before, written)
    check_shares(before)
    for usage in written_tables(before):  # nothing compressed yet: all row store, raw on disk
        assert (usage.columnstore_rows, usage.columnstore_bytes) == (0, 0)
        assert usage.bytes == usage.raw_bytes > 0

    compress_all(ts_url)
    after = dbstatus.collect(ts_url)

    check_rows(after, written)
    check_shares(after)
    with psycopg.connect(ts_url) as conn:
        stats = {
            t: conn.execute(
                "SELECT sum(before_compression_total_bytes), sum(after_compression_total_bytes) "
                "FROM chunk_compression_stats(%s)",
                (t,),
            ).fetchone()
            for t in PARTITIONED
        }
    for usage in written_tables(after):
        assert usage.columnstore_rows == usage.rows  # every row is in the columnstore now
        assert usage.columnstore_bytes == stats[usage.table][1] > 0  # type: ignore[index]
        assert usage.raw_bytes >= stats[usage.table][0]  # type: ignore[index]
    for table in ("nnt_batch_metric", "nnt_resource"):  # many small rows compress well
        usage = next(u for u in after.tables if u.table == table)
        assert usage.bytes < usage.raw_bytes
    assert after.total.columnstore_bytes and after.total.bytes < after.total.raw_bytes
    for sim in after.simulations:
        packed = [u for t, u in sim.tables.items() if t in PARTITIONED]
        assert all(u.columnstore_rows == u.rows for u in packed)
        assert (sim.columnstore_bytes or 0) > 0
    for user in after.users:
        assert (user.columnstore_bytes or 0) > 0 and user.bytes < user.raw_bytes


def test_it_reports_raw_bytes_only_on_native_partitioning(pg_url: str) -> None:
    url = new_database(pg_url, "nnt_status_native", timescaledb=False)
    written = populate(url)

    status = dbstatus.collect(url)

    assert (status.mode, status.estimate) == ("native", "raw")
    check_rows(status, written)
    check_shares(status)
    for usage in [*status.tables, *status.simulations, *status.users, status.total]:
        assert usage.columnstore_rows is None and usage.columnstore_bytes is None
        assert usage.bytes == usage.raw_bytes
    text = dbstatus.render(status)
    assert "native partitioning: raw bytes only (no columnstore)" in text
    assert "UNCOMPRESSED" not in text


def test_the_cli_prints_the_report_as_text_and_json(
    ts_url: str,
    timescaledb: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    written = populate(ts_url)
    monkeypatch.setenv("DATABASE_URL", ts_url)
    biggest = str(next(iter(written.rows)))

    assert cli.main(["db", "status", "--by", "simulation", "--top", "2"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("database     127.0.0.1:") and "password" not in lines[0]
    assert lines[1].startswith("PostgreSQL   ")
    assert lines[2].startswith(f"mode         TimescaleDB {timescaledb}: hypertables")
    assert lines[3].startswith("size         ") and "uncompressed" in lines[3]
    assert lines[6].split() == [
        "TABLE", "ROWS", "ON", "DISK", "UNCOMPRESSED", "RATIO", "COLUMNSTORE",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[7:12]] == list(PARTITIONED)
    at = lines.index("", 7) + 1  # the simulations follow the tables and a blank line
    header = lines[at].split()
    assert header[:3] == ["SIMULATION", "OWNER", "ROWS"] and header[-1] == "NAME"
    first = lines[at + 1].split()
    assert first[:3] == [biggest, "alice", f"{sum(written.rows[uuid.UUID(biggest)].values()):,}"]
    assert first[-1] == "big"
    assert lines[at + 3 :] == [lines[at + 3]] and lines[at + 3].startswith("… 2 more simulations,")

    assert cli.main(["db", "status", "--json", "--top", "1"]) == 0

    report = json.loads(capsys.readouterr().out)
    assert report["mode"] == "timescaledb" and report["timescaledb_version"] == timescaledb
    assert [u["owner"] for u in report["users"]] == ["alice"]
    assert report["simulations"][0]["simulation_id"] == biggest
    assert (
        report["simulations"][0]["tables"]["nnt_tensor"]["rows"]
        == (written.rows[uuid.UUID(biggest)]["nnt_tensor"])
    )


def test_it_shares_bytes_by_rows_where_timescaledb_does_not_name_compressed_chunks(
    ts_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # TimescaleDB before compression_settings.compress_relid: no per-segment sizes to read
    written = populate(ts_url)
    compress_all(ts_url)
    monkeypatch.setattr("store.dbstatus.COMPRESS_RELID_SQL", "SELECT false")

    status = dbstatus.collect(ts_url)

    assert status.estimate == "row share"
    check_rows(status, written)
    check_shares(status)
    for usage in written_tables(status):
        assert usage.columnstore_rows is None and (usage.columnstore_bytes or 0) > 0
        for sim in status.simulations:  # rows alone decide each one's share
            share = sim.tables[usage.table].rows / usage.rows
            assert abs(sim.tables[usage.table].bytes - usage.bytes * share) <= 1
    assert "row share" in status.as_json()["estimate"]
    assert "does not name compressed chunks" in dbstatus.render(status)


def test_it_reports_a_database_whose_tables_hold_nothing_yet(ts_url: str) -> None:
    status = dbstatus.collect(ts_url)

    assert status.mode == "timescaledb" and status.simulations == status.users == []
    assert [(t.table, t.rows, t.columnstore_rows) for t in status.tables[:5]] == [
        (table, 0, 0) for table in PARTITIONED
    ]
    assert all(t.rows == 0 for t in status.tables)
    assert "(no rows in the time-series tables)" in dbstatus.render(status)


def test_it_reports_each_continuous_aggregate_per_simulation_under_its_name(
    ts_url: str,
) -> None:
    written = populate(ts_url)
    with psycopg.connect(ts_url, autocommit=True) as conn:
        for name, by in (("nnt_test_daily", "simulation_id, metric"), ("nnt_test_all", "metric")):
            conn.execute(
                f"CREATE MATERIALIZED VIEW {name} WITH (timescaledb.continuous, "
                "timescaledb.materialized_only = true) AS SELECT time_bucket('1 day', at) AS day, "
                f"{by}, avg(value) AS value FROM nnt_epoch_metric GROUP BY day, {by} WITH NO DATA"
            )
            conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, NULL)")
        counted = conn.execute("SELECT simulation_id, count(*) FROM nnt_test_daily GROUP BY 1")
        expected: dict[uuid.UUID, int] = {sid: n for sid, n in counted.fetchall()}
    assert set(expected) == set(written.rows) and all(expected.values())

    status = dbstatus.collect(ts_url)

    check_rows(status, written)
    check_shares(status)
    (daily,) = [u for u in status.tables if u.table == "nnt_test_daily"]
    assert daily.rows == sum(expected.values()) and daily.bytes > 0
    assert "nnt_test_all" not in {u.table for u in status.tables}  # not per simulation
    for sim in status.simulations:
        assert sim.tables["nnt_test_daily"].rows == expected[uuid.UUID(sim.simulation_id)]
