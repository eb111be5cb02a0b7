"""The native fallback, kept alive beside TimescaleDB: a database of the session's server with
the schema forced to native range partitions (as on a PostgreSQL without TimescaleDB), written
and replayed through the stream workers' sink, downsampled by their maintenance pass (the
only retention there is without TimescaleDB) and read back."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from infra import timeseries
from infra.settings import InfraError, TimescaleSettings
from stream_processors import downsample, rows
from tests.timeseries_data import EPOCHS, new_database, run_rows, write

TABLES = ("nnt_batch_metric", "nnt_epoch_metric", "nnt_resource", "nnt_status_event", "nnt_tensor")


@pytest.fixture()
def native_url(pg_url: str) -> str:
    """A new database with the schema forced native (NNT_TIMESCALEDB=off does the same)."""
    return new_database(pg_url, "nnt_native", timescaledb=False)


def _all(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _layout(url: str) -> list[tuple[object, ...]]:
    return _all(
        url,
        "SELECT p.partrelid::regclass::text, count(i.inhrelid), "
        "count(*) FILTER (WHERE c.relname LIKE '%%_default') FROM pg_partitioned_table p "
        "JOIN pg_inherits i ON i.inhparent = p.partrelid JOIN pg_class c ON c.oid = i.inhrelid "
        "GROUP BY 1 ORDER BY 1",
    )


def test_it_partitions_by_month_with_brin_indexes_and_no_timescaledb(native_url: str) -> None:
    layout = _layout(native_url)
    # last month, this month, three ahead, and a default partition for anything else
    assert layout == [(table, 6, 1) for table in TABLES]
    assert _all(native_url, "SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'") == []
    brin = _all(
        native_url,
        "SELECT tablename FROM pg_indexes WHERE indexdef LIKE '%%USING brin (at)%%' "
        "AND tablename = ANY(%s) ORDER BY 1",
        (list(TABLES),),
    )
    assert brin == [(table,) for table in TABLES]
    storage = _all(
        native_url,
        "SELECT DISTINCT a.attstorage FROM pg_inherits i JOIN pg_attribute a "
        "ON a.attrelid = i.inhrelid AND a.attname = 'data' WHERE i.inhparent = 'nnt_tensor'::regclass",
    )
    assert storage == [("e",)]  # zstd payloads are never compressed twice

    assert timeseries.apply(native_url, timescaledb=False) == "native"
    assert _layout(native_url) == layout


def test_it_stays_native_once_its_tables_are(native_url: str) -> None:
    auto = TimescaleSettings(nnt_timescaledb="auto")  # TimescaleDB wherever it is loadable
    mode = timeseries.apply_schema(native_url, settings=auto)
    assert mode.name == "native" and "natively partitioned" in mode.reason
    with pytest.raises(InfraError, match="native partitioning"):
        timeseries.apply(native_url, timescaledb=True)


def test_it_writes_replays_thins_and_reads_back(native_url: str) -> None:
    sim = uuid.uuid4()
    run = run_rows(sim)
    assert write(native_url, run) == {table.name: len(batch) for table, batch in run.items()}
    assert write(native_url, run) == {table.name: 0 for table in run}  # a replay adds nothing
    stats_sql = (
        "SELECT layer_index, kind, variable, epoch, shape, stats FROM nnt_tensor "
        "WHERE simulation_id = %s AND chunk = 0 ORDER BY 1, 2, 3, 4"
    )
    stats = _all(native_url, stats_sql, (sim,))
    assert len(stats) == 4 * EPOCHS

    policy = downsample.Policy(batch_raw_age_s=3600, tensor_thin_age_s=86400, tensor_keep_every=4)
    touched = asyncio.run(_maintain(native_url, policy))  # the stream workers' timer, here

    assert touched["batch_buckets"] == 2 * EPOCHS  # 20 steps per epoch: two buckets of 10
    assert _all(native_url, stats_sql, (sim,)) == stats  # thinning keeps every statistic
    kept = _all(
        native_url,
        "SELECT DISTINCT epoch FROM nnt_tensor WHERE simulation_id = %s AND chunks > 0 "
        "ORDER BY epoch",
        (sim,),
    )
    assert kept == [(4,), (8,), (12,)]
    buckets = _all(
        native_url,
        "SELECT epoch, step, value_min, value_max, reduced FROM nnt_batch_metric "
        "WHERE simulation_id = %s AND epoch = 1 ORDER BY step",
        (sim,),
    )
    assert buckets == [
        (1, 9, 2.0, pytest.approx(2.09), True),
        (1, 19, pytest.approx(2.1), pytest.approx(2.19), True),
    ]


async def _maintain(url: str, policy: downsample.Policy) -> dict[str, int]:
    """A pass of the stream workers' maintenance timer: it finds the tables native."""
    maintenance = downsample.Maintenance(policy)
    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        touched = await maintenance.run(conn)
    assert maintenance.native is True
    return touched


def test_it_reads_batch_points_through_an_empty_bucket_view(native_url: str) -> None:
    # the web reads both forms with one query: natively, the buckets are rows of the table
    sim = uuid.uuid4()
    write(native_url, {rows.BATCH_METRIC: run_rows(sim)[rows.BATCH_METRIC]})
    assert _all(native_url, "SELECT count(*) FROM nnt_batch_bucket") == [(0,)]
    view = _all(native_url, "SELECT relkind::text FROM pg_class WHERE relname = 'nnt_batch_bucket'")
    assert view == [("v",)]


def test_it_puts_rows_outside_the_monthly_partitions_in_the_default_one(native_url: str) -> None:
    sim = uuid.uuid4()
    far = datetime.now(UTC) + timedelta(days=400)
    write(native_url, {rows.EPOCH_METRIC: [(sim, 1, "loss", 0.5, far)]})
    got = _all(
        native_url,
        "SELECT tableoid::regclass::text, value FROM nnt_epoch_metric WHERE simulation_id = %s",
        (sim,),
    )
    assert got == [("nnt_epoch_metric_default", 0.5)]
