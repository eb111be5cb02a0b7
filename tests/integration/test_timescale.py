"""TimescaleDB in use: hypertables sized by volume, columnstore per simulation, the policies
that compress and expire data (and what they keep), the continuous aggregate that folds batch
points and the job that thins tensors (the same rows as the native passes give), replays into
columnstore chunks, and the fallback when the server has TimescaleDB installed but not
preloaded.

The web's charts and export on columnstore chunks, and its batch points read from the
aggregate: tests/integration/web/test_web_timescale.py.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from infra import postgres, timeseries
from infra.settings import InfraError, TimescaleSettings
from store.tables import Row
from stream_processors import downsample, rows
from tests import services
from tests.streamworker import WEB_TABLES
from tests.timeseries_data import (
    as_json,
    compress_everything,
    empty_database,
    new_database,
    run_rows,
    write,
)

HYPERTABLES = (
    "nnt_batch_metric",
    "nnt_epoch_metric",
    "nnt_resource",
    "nnt_status_event",
    "nnt_tensor",
)


@pytest.fixture()
def ts_url(pg_url: str, timescaledb: str) -> str:
    """A new database on the session's server with the TimescaleDB schema."""
    return new_database(pg_url, "nnt_ts", timescaledb=True)


def _all(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def _jobs(url: str) -> dict[tuple[str, str | None], dict[str, Any]]:
    found = _all(
        url,
        "SELECT proc_name, hypertable_name, config, scheduled, next_start > now() "
        "FROM timescaledb_information.jobs WHERE proc_name <> 'policy_telemetry' "
        "AND proc_name <> 'policy_job_stat_history_retention'",
    )
    return {(p, h): {**(c or {}), "scheduled": s, "waits": w} for p, h, c, s, w in found}


def _run_job(url: str, proc: str, table: str | None = None) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs WHERE proc_name = %s "
            "AND hypertable_name IS NOT DISTINCT FROM %s",
            (proc, table),
        ).fetchone()
        assert row is not None, f"no {proc} job for {table}"
        conn.execute("CALL run_job(%s)", (row[0],))


def test_it_makes_every_time_series_table_a_hypertable_sized_by_its_volume(
    pg_url: str, timescaledb: str
) -> None:
    got = _all(
        pg_url,
        "SELECT h.hypertable_name, h.compression_enabled, d.column_name, d.time_interval "
        "FROM timescaledb_information.hypertables h JOIN timescaledb_information.dimensions d "
        "USING (hypertable_schema, hypertable_name) ORDER BY 1",
    )
    day = timedelta(days=1)
    assert got == [
        ("nnt_batch_metric", True, "at", day),
        ("nnt_epoch_metric", True, "at", 30 * day),
        ("nnt_resource", True, "at", 7 * day),
        ("nnt_status_event", True, "at", 30 * day),
        ("nnt_tensor", True, "at", day),
    ]


def test_it_compresses_each_simulation_apart_in_the_order_charts_read(
    pg_url: str, timescaledb: str
) -> None:
    got = _all(
        pg_url,
        "SELECT coalesce(a.view_name, s.hypertable::text), s.segmentby, s.orderby "
        "FROM timescaledb_information.hypertable_compression_settings s "
        "LEFT JOIN timescaledb_information.continuous_aggregates a "
        "ON s.hypertable = format('%I.%I', a.materialization_hypertable_schema, "
        "a.materialization_hypertable_name)::regclass ORDER BY 1",
    )
    assert got == [
        ("nnt_batch_bucket", "simulation_id", "metric,epoch,step,at DESC,period DESC"),
        ("nnt_batch_metric", "simulation_id", "metric,epoch,step,at DESC"),
        ("nnt_epoch_metric", "simulation_id", "metric,epoch,at"),
        ("nnt_resource", "simulation_id", "at"),
        ("nnt_status_event", "simulation_id", "at,status"),
        ("nnt_tensor", "simulation_id,layer_index,kind,variable", "epoch,chunk,at DESC"),
    ]


def test_it_schedules_columnstore_retention_aggregate_and_thinning_policies(
    pg_url: str, timescaledb: str
) -> None:
    jobs = _jobs(pg_url)
    compress = {t: jobs[("policy_compression", t)]["compress_after"] for t in HYPERTABLES}
    assert compress == {
        "nnt_batch_metric": "1 day",
        "nnt_epoch_metric": "7 days",
        "nnt_resource": "7 days",
        "nnt_status_event": "7 days",
        "nnt_tensor": "32 days",
    }
    # NNT_BATCH_RAW_AGE_S (1 hour) plus a week of late points, plus one raw chunk
    assert jobs[("policy_compression", "nnt_batch_bucket")]["compress_after"] == "8 days 01:00:00"
    refresh = jobs[("policy_refresh_continuous_aggregate", "nnt_batch_bucket")]
    assert (refresh["start_offset"], refresh["end_offset"]) == ("7 days 01:00:00", "01:00:00")
    assert jobs[("policy_retention", "nnt_batch_metric")]["drop_after"] == "8 days 01:00:00"
    assert jobs[("policy_retention", "nnt_resource")]["drop_after"] == "30 days"
    assert jobs[("nnt_drop_tensor_payloads", None)]["drop_after"] == "180 days"
    thin = jobs[("nnt_thin_tensors", None)]
    assert (thin["thin_after"], thin["keep_every"]) == ("30 days", 10)
    assert jobs[("nnt_purge_deleted_batch_buckets", None)]["deleted_within"] == "8 days 1 hour"
    # no chunk-dropping retention on any other table, no other job
    assert len(jobs) == len(HYPERTABLES) + 7
    # scheduled, and the first run waits one period: data just written is never rewritten
    assert all(job["scheduled"] and job["waits"] for job in jobs.values())


def test_it_drops_old_tensor_values_and_keeps_their_statistics(ts_url: str) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    write(ts_url, {rows.TENSOR: run_rows(old)[rows.TENSOR]})
    write(
        ts_url, {rows.TENSOR: run_rows(recent, epochs=3, t0=now - timedelta(days=1))[rows.TENSOR]}
    )
    compress_everything(ts_url)  # the job must work on columnstore chunks
    stats_sql = (
        "SELECT layer_index, kind, variable, epoch, shape, stats FROM nnt_tensor "
        "WHERE simulation_id = %s AND chunk = 0 ORDER BY 1, 2, 3, 4"
    )
    stats_before = _all(ts_url, stats_sql, (old,))
    recent_before = _all(
        ts_url,
        "SELECT * FROM nnt_tensor WHERE simulation_id = %s ORDER BY 2, 4, 5, 6, 7",
        (recent,),
    )

    _run_job(ts_url, "nnt_drop_tensor_payloads")

    assert _all(ts_url, stats_sql, (old,)) == stats_before  # every chart keeps its statistics
    left = _all(
        ts_url,
        "SELECT count(*), count(*) FILTER (WHERE chunk > 0), count(data), "
        "count(*) FILTER (WHERE chunks > 0), bool_and(reduced) FILTER (WHERE kind <> 'activation') "
        "FROM nnt_tensor WHERE simulation_id = %s",
        (old,),
    )
    assert left == [(len(stats_before), 0, 0, 0, True)]
    assert all(as_json(row[5])["hist_counts"] for row in stats_before)
    recent_after = _all(
        ts_url,
        "SELECT * FROM nnt_tensor WHERE simulation_id = %s ORDER BY 2, 4, 5, 6, 7",
        (recent,),
    )
    assert recent_after == recent_before and any(row[11] for row in recent_after)


def test_it_drops_old_resource_samples_with_their_chunks_and_nothing_else(ts_url: str) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    write(ts_url, run_rows(old, epochs=2))
    write(
        ts_url,
        {rows.RESOURCE: run_rows(recent, epochs=1, t0=now - timedelta(hours=7))[rows.RESOURCE]},
    )
    counts_sql = (
        "SELECT (SELECT count(*) FROM nnt_resource WHERE simulation_id = %(s)s), "
        "(SELECT count(*) FROM nnt_epoch_metric WHERE simulation_id = %(s)s), "
        "(SELECT count(*) FROM nnt_status_event WHERE simulation_id = %(s)s), "
        "(SELECT count(data) FROM nnt_tensor WHERE simulation_id = %(s)s)"
    )
    (before,) = _all(ts_url, counts_sql, {"s": old})
    assert all(before)

    _run_job(ts_url, "policy_retention", "nnt_resource")

    assert _all(ts_url, counts_sql, {"s": old}) == [(0, *before[1:])]
    assert _all(
        ts_url, "SELECT count(*) FROM nnt_resource WHERE simulation_id = %s", (recent,)
    ) == [(36,)]


def test_it_takes_a_replay_into_columnstore_chunks_without_duplicates(ts_url: str) -> None:
    sim = uuid.uuid4()
    run = run_rows(sim)
    first = write(ts_url, run)
    assert first == {table.name: len(batch) for table, batch in run.items()}
    assert compress_everything(ts_url)[0] >= 5

    again = write(ts_url, run)  # a worker restarted before its offsets were committed

    assert again == {table.name: 0 for table in run}
    for table, batch in run.items():
        count = _all(ts_url, f"SELECT count(*) FROM {table.name} WHERE simulation_id = %s", (sim,))
        assert count == [(len(batch),)], table.name


def test_it_applies_again_without_change_and_follows_changed_ages(ts_url: str) -> None:
    before = _all(ts_url, "SELECT job_id, config FROM timescaledb_information.jobs ORDER BY 1")
    assert timeseries.apply(ts_url) == "timescaledb"
    assert (
        _all(ts_url, "SELECT job_id, config FROM timescaledb_information.jobs ORDER BY 1") == before
    )

    changed = TimescaleSettings(nnt_tensor_payload_retention_days=0, nnt_resource_retention_days=7)
    timeseries.apply(ts_url, settings=changed)
    jobs = _jobs(ts_url)
    assert ("nnt_drop_tensor_payloads", None) not in jobs
    assert jobs[("policy_retention", "nnt_resource")]["drop_after"] == "7 days"

    timeseries.apply(ts_url, settings=TimescaleSettings(nnt_tensor_payload_retention_days=90))
    assert _jobs(ts_url)[("nnt_drop_tensor_payloads", None)]["drop_after"] == "90 days"


def test_it_follows_changed_downsampling_ages_and_keeps_its_bucket_size(
    ts_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    changed = timeseries.Downsampling(
        nnt_batch_raw_age_s=7200, nnt_tensor_thin_age_s=10 * 86400, nnt_tensor_keep_every=5
    )
    timeseries.apply(ts_url, downsampling=changed)
    jobs = _jobs(ts_url)
    refresh = jobs[("policy_refresh_continuous_aggregate", "nnt_batch_bucket")]
    assert (refresh["start_offset"], refresh["end_offset"]) == ("7 days 02:00:00", "02:00:00")
    assert jobs[("policy_retention", "nnt_batch_metric")]["drop_after"] == "8 days 02:00:00"
    assert jobs[("policy_compression", "nnt_batch_bucket")]["compress_after"] == "8 days 02:00:00"
    thin = jobs[("nnt_thin_tensors", None)]
    assert (thin["thin_after"], thin["keep_every"]) == ("10 days", 5)
    again = _all(ts_url, "SELECT job_id, config FROM timescaledb_information.jobs ORDER BY 1")

    with caplog.at_level(logging.WARNING, logger="store.schema"):
        timeseries.apply(
            ts_url, downsampling=changed.model_copy(update={"nnt_batch_bucket_steps": 5})
        )

    assert "NNT_BATCH_BUCKET_STEPS=5, but nnt_batch_bucket folds buckets of 10 steps" in caplog.text
    assert (
        _all(ts_url, "SELECT job_id, config FROM timescaledb_information.jobs ORDER BY 1") == again
    )


def batch_rows(sim: uuid.UUID, events: dict[int, datetime]) -> list[Row]:
    """Two metrics of 25 steps per epoch (buckets of 10, 10 and 5), values up and down."""
    return [
        (sim, epoch, step, metric, epoch + ((step * 7) % 11) / (10 if metric == "loss" else 20), at)
        for epoch, at in events.items()
        for metric in ("loss", "accuracy")
        for step in range(25)
    ]


def _run_native(url: str, policy: downsample.Policy) -> dict[str, int]:
    async def go() -> dict[str, int]:
        async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
            return await downsample.Maintenance(policy).run(conn)

    return asyncio.run(go())


NATIVE_REDUCED = (
    "SELECT simulation_id, metric, epoch, step, value, value_min, value_max, at "
    "FROM nnt_batch_metric WHERE reduced ORDER BY 1, 2, 3, 4, 8"
)
BUCKETS = (
    "SELECT simulation_id, metric, epoch, step, value, value_min, value_max, at "
    "FROM nnt_batch_bucket ORDER BY 1, 2, 3, 4, 8"
)


def test_it_folds_old_batch_points_into_the_buckets_the_native_pass_makes(
    ts_url: str, pg_url: str
) -> None:
    sim, now = uuid.uuid4(), datetime.now(UTC).replace(microsecond=0)
    ancient = batch_rows(sim, {1: now - timedelta(days=12), 2: now - timedelta(days=11)})
    old = batch_rows(sim, {3: now - timedelta(days=2), 4: now - timedelta(hours=30)})
    recent = batch_rows(sim, {5: now - timedelta(minutes=10)})
    with psycopg.connect(ts_url, autocommit=True) as conn:  # a database from before the aggregate
        conn.execute("DROP MATERIALIZED VIEW nnt_batch_bucket")
    write(ts_url, {rows.BATCH_METRIC: ancient})

    timeseries.apply(ts_url)  # creates it and folds every point older than the raw age
    write(ts_url, {rows.BATCH_METRIC: old + recent})
    _run_job(ts_url, "policy_refresh_continuous_aggregate", "nnt_batch_bucket")
    _run_job(ts_url, "policy_retention", "nnt_batch_metric")

    native = new_database(pg_url, "nnt_native", timescaledb=False)
    write(native, {rows.BATCH_METRIC: ancient + old + recent})
    touched = _run_native(native, downsample.Policy(batch_raw_age_s=3600))
    buckets = _all(ts_url, BUCKETS)
    assert buckets == _all(native, NATIVE_REDUCED)
    # metrics x epochs older than an hour x buckets
    assert len(buckets) == touched["batch_buckets"] == 2 * 4 * 3
    at = now - timedelta(days=12)
    assert buckets[:3] == [  # accuracy of epoch 1: last, min and max of steps 0-9, 10-19, 20-24
        (sim, "accuracy", 1, 9, pytest.approx(1.4), 1.0, 1.5, at),
        (sim, "accuracy", 1, 19, pytest.approx(1.05), 1.0, 1.5, at),
        (sim, "accuracy", 1, 24, pytest.approx(1.15), 1.0, pytest.approx(1.4), at),
    ]
    raw = "SELECT DISTINCT epoch FROM nnt_batch_metric ORDER BY 1"
    assert _all(ts_url, raw) == [(3,), (4,), (5,)]  # the ancient raw points are gone

    write(ts_url, {rows.BATCH_METRIC: ancient})  # a replay after its raw chunks were dropped
    _run_job(ts_url, "policy_refresh_continuous_aggregate", "nnt_batch_bucket")
    assert _all(ts_url, BUCKETS) == buckets


def test_it_thins_old_tensor_values_as_the_native_pass_does(ts_url: str, pg_url: str) -> None:
    old, recent = uuid.uuid4(), uuid.uuid4()
    now = datetime.now(UTC).replace(microsecond=0)
    tensors = run_rows(old)[rows.TENSOR]
    tensors += run_rows(recent, epochs=3, t0=now - timedelta(days=1))[rows.TENSOR]
    thin = timeseries.Downsampling(nnt_tensor_thin_age_s=86400, nnt_tensor_keep_every=4)
    timeseries.apply(ts_url, downsampling=thin)
    write(ts_url, {rows.TENSOR: tensors})
    compress_everything(ts_url)  # the job must work on columnstore chunks

    _run_job(ts_url, "nnt_thin_tensors")

    native = new_database(pg_url, "nnt_native", timescaledb=False)
    write(native, {rows.TENSOR: tensors})
    policy = downsample.Policy(tensor_thin_age_s=86400, tensor_keep_every=4)
    assert _run_native(native, policy)["tensors_thinned"] > 0
    every_row = (
        "SELECT simulation_id, layer_index, kind, variable, epoch, chunk, chunks, data, "
        "stats::text, reduced, at FROM nnt_tensor ORDER BY 1, 2, 3, 4, 5, 6, 11"
    )
    thinned = _all(ts_url, every_row)
    assert thinned == _all(native, every_row)
    stats = [r for r in thinned if r[0] == old and r[5] == 0]
    assert len(stats) == 4 * 12 and all(as_json(r[8])["hist_counts"] for r in stats)
    assert sorted({r[4] for r in thinned if r[0] == old and r[6] > 0}) == [4, 8, 12]
    assert {r[4] for r in thinned if r[0] == recent and r[6] > 0} == {1, 2, 3}  # a day old


def test_it_purges_the_buckets_of_deleted_simulations(ts_url: str) -> None:
    gone, kept = uuid.uuid4(), uuid.uuid4()
    two_days = {1: datetime.now(UTC) - timedelta(days=2)}
    write(ts_url, {rows.BATCH_METRIC: batch_rows(gone, two_days) + batch_rows(kept, two_days)})
    _run_job(ts_url, "policy_refresh_continuous_aggregate", "nnt_batch_bucket")
    with psycopg.connect(ts_url, autocommit=True) as conn:
        conn.execute(WEB_TABLES.read_text())
        conn.execute(
            "INSERT INTO nnt_simulation (id, status) VALUES (%s, 'deleted'), (%s, 'finished')",
            (gone, kept),
        )
    asyncio.run(_purge(ts_url, gone))  # what the stream workers do on a `deleted` status
    count = "SELECT simulation_id, count(*) FROM nnt_batch_bucket GROUP BY 1 ORDER BY 1"
    assert dict(_all(ts_url, count)) == {gone: 6, kept: 6}  # raw points gone, buckets not yet

    _run_job(ts_url, "nnt_purge_deleted_batch_buckets")

    assert _all(ts_url, count) == [(kept, 6)]


async def _purge(url: str, sim: uuid.UUID) -> None:
    from store import deletion

    async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
        await deletion.purge(conn, sim)


def test_it_leaves_folding_and_thinning_to_the_database(ts_url: str) -> None:
    sim = uuid.uuid4()
    write(ts_url, {rows.BATCH_METRIC: batch_rows(sim, {1: datetime.now(UTC) - timedelta(days=2)})})
    tensors = run_rows(sim, epochs=3)[rows.TENSOR]
    write(ts_url, {rows.TENSOR: tensors})
    before = _all(ts_url, "SELECT count(*), count(*) FILTER (WHERE reduced) FROM nnt_batch_metric")

    assert _run_native(ts_url, downsample.Policy(tensor_thin_age_s=0, tensor_keep_every=2)) == {}

    assert (
        _all(ts_url, "SELECT count(*), count(*) FILTER (WHERE reduced) FROM nnt_batch_metric")
        == before
    )
    assert _all(ts_url, "SELECT count(data) FROM nnt_tensor") == [
        (sum(1 for r in tensors if r[11]),)
    ]


@pytest.fixture
def server_home() -> Iterator[Path]:
    """A second server's NNT_HOME. Not under pytest's basetemp: the embedded PostgreSQL (another
    user) must reach its data, and opening the path to it would open the basetemp to every
    user for the rest of the session."""
    with tempfile.TemporaryDirectory(prefix="nnt-ts-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        yield home


def test_it_uses_native_partitions_when_timescaledb_is_installed_but_not_preloaded(
    timescaledb: str, server_home: Path
) -> None:
    # The crash: the wheel has the extension (pg_available_extensions lists it), the
    # server does not preload it, and CREATE EXTENSION used to fail the whole set-up.
    port = services.free_port()
    running = services.start(
        postgres.prepare(server_home, port, timescaledb=False), server_home / "pg.log"
    )
    try:
        url = postgres.url(server_home, port)
        with psycopg.connect(url) as conn:
            listed = conn.execute(
                "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
            ).fetchone()
        assert listed == (timescaledb,)
        mode = timeseries.apply_schema(url, settings=TimescaleSettings(nnt_timescaledb="auto"))
        assert mode.name == "native" and "not preloaded" in mode.reason
        parted = _all(url, "SELECT count(*) FROM pg_partitioned_table")
        assert parted == [(5,)]
        with pytest.raises(InfraError, match="shared_preload_libraries"):
            timeseries.apply(empty_database(url, "nnt_on"), timescaledb=True)
    finally:
        running.stop()
