"""Tag aggregates, downsampling and tensor thinning with a real worker, Kafka and PostgreSQL.

Folding old batch points and thinning old tensors is the worker's maintenance timer on native
tables and TimescaleDB's (a continuous aggregate and a job) on hypertables: the tests read the
same rows in both forms, running the database's policies where they are the database's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import BatchPoint, EpochEvent
from schemas.live import LiveUpdate
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from tests.streamworker import Reader, Worker, produce, rows, until

pytestmark = pytest.mark.integration

AGGREGATES = (
    "SELECT metric, epoch, count, sum / count, min, max, sqrt(greatest(sumsq / count - "
    "(sum / count) ^ 2, 0)) FROM nnt_tag_aggregate WHERE owner = %s AND tag = %s "
    "ORDER BY metric, epoch"
)


@pytest.fixture(scope="module")
def tuned(
    kafka_bootstrap: str, web_tables: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """A worker that keeps full tensors of even epochs only and maintains every second."""
    env = {
        "NNT_FULL_TENSOR_PERIOD": "2",
        "NNT_MAINTENANCE_INTERVAL_S": "1",
        "NNT_TENSOR_KEEP_EVERY": "4",
        "NNT_STREAM_BATCH_WITHIN": "0.2",
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        running = Worker(kafka_bootstrap, web_tables, tmp_path_factory.mktemp("tuned-worker"))
    running.wait_ready()
    yield running
    running.stop()


def send(bootstrap: str, topic: str, events: list) -> None:
    produce(bootstrap, topic, [(str(e.simulation_id), dumps(e)) for e in events])


def expected_aggregates(pg_url: str, sims: list[uuid.UUID]) -> list[tuple]:
    """numpy's count/mean/min/max/std per (metric, epoch) over the simulations' stored rows."""
    got: dict[tuple[str, int], list[float]] = {}
    for metric, epoch, value in rows(
        pg_url,
        "SELECT metric, epoch, value FROM nnt_epoch_metric WHERE simulation_id = ANY(%s)",
        sims,
    ):
        got.setdefault((metric, epoch), []).append(value)
    return [
        (m, e, len(v), np.mean(v), np.min(v), np.max(v), np.std(v))
        for (m, e), v in sorted(got.items())
    ]


def close(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        x[:3] == y[:3] and np.allclose(x[3:], y[3:], rtol=1e-9, atol=1e-9)
        for x, y in zip(a, b, strict=True)
    )


def test_it_aggregates_a_tag_live_and_counts_replays_once(
    tuned: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    tag, rng = f"grp-{uuid.uuid4().hex[:8]}", np.random.default_rng(7)
    owner = f"ada-{tag}"
    sims = [uuid.uuid4() for _ in range(4)]
    # Three runs announce their tags on nnt.status; the fourth was tagged in the web only.
    rows(
        web_tables,
        "INSERT INTO nnt_simulation (id, owner_name, tags) VALUES (%s, %s, %s) RETURNING id",
        sims[3],
        owner,
        [tag],
    )
    status = [
        StatusEvent(simulation_id=s, status="running", owner=owner, tags=[tag, "other"])
        for s in sims[:3]
    ]
    events = [
        EpochEvent(
            simulation_id=s,
            epoch=e,
            total_epochs=3,
            metrics={"loss": float(rng.normal()), "accuracy": float(rng.random())},
        )
        for s in sims
        for e in (1, 2, 3)
    ]
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{tag}")
    try:
        send(kafka_bootstrap, topics.EPOCHS, events[:6])  # epochs before the tags: backfilled
        send(kafka_bootstrap, topics.STATUS, status)
        send(kafka_bootstrap, topics.EPOCHS, events[6:])
        want = until(
            lambda: (
                (w := expected_aggregates(web_tables, sims)) and len(w) == 6 and w[0][2] == 4 and w
            ),
            60,
            tuned,
        )
        until(lambda: close(rows(web_tables, AGGREGATES, owner, tag), want), 60, tuned)

        def live() -> dict | None:
            got = {}
            for value in reader.poll(tag):
                update = LiveUpdate.model_validate_json(value)
                got.update({(a.metric, a.epoch): a.model_dump() for a in update.aggregates})
            return (
                got
                if got and all(a["count"] == 4 for a in got.values()) and len(got) == 6
                else None
            )

        streamed = until(live, 60, tuned)
        loss1 = [w for w in want if w[:2] == ("loss", 1)][0]
        assert np.allclose(
            [streamed[("loss", 1)][k] for k in ("mean", "min", "max", "std")], loss1[3:]
        )

        # Replay every event, then a marker behind them: the aggregates must not move.
        send(kafka_bootstrap, topics.STATUS, status)
        send(kafka_bootstrap, topics.EPOCHS, events)
        marker = uuid.uuid4()
        send(
            kafka_bootstrap,
            topics.STATUS,
            [StatusEvent(simulation_id=marker, status="running", owner=owner, tags=[tag])],
        )
        send(
            kafka_bootstrap,
            topics.EPOCHS,
            [EpochEvent(simulation_id=marker, epoch=9, total_epochs=9, metrics={"loss": 5.0})],
        )
        until(
            lambda: any(r[:2] == ("loss", 9) for r in rows(web_tables, AGGREGATES, owner, tag)),
            60,
            tuned,
        )
        after = [r for r in rows(web_tables, AGGREGATES, owner, tag) if r[1] != 9]
        assert close(after, want)
    finally:
        reader.close()


def live_by_owner(reader: Reader, tag: str) -> dict[str | None, dict[tuple[str, int], dict]]:
    """The latest streamed aggregate per owner and (metric, epoch) of one tag."""
    got: dict[str | None, dict[tuple[str, int], dict]] = {}
    for value in reader.poll(tag):
        update = LiveUpdate.model_validate_json(value)
        got.setdefault(update.owner, {}).update(
            {(a.metric, a.epoch): a.model_dump() for a in update.aggregates}
        )
    return got


def test_it_keeps_two_users_aggregates_of_the_same_tag_apart(
    tuned: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    tag, rng = f"shared-{uuid.uuid4().hex[:8]}", np.random.default_rng(11)
    ada, bob = f"ada-{tag}", f"bob-{tag}"
    mine, theirs = [uuid.uuid4(), uuid.uuid4()], [uuid.uuid4()]
    status = [
        StatusEvent(simulation_id=s, status="running", owner=o, tags=[tag])
        for o, sims in ((ada, mine), (bob, theirs))
        for s in sims
    ]
    events = [
        EpochEvent(
            simulation_id=s,
            epoch=1,
            total_epochs=1,
            metrics={"loss": float(rng.normal()) + (100.0 if s in theirs else 0.0)},
        )
        for s in mine + theirs
    ]
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{tag}")
    try:
        send(kafka_bootstrap, topics.STATUS, status)
        send(kafka_bootstrap, topics.EPOCHS, events)
        for owner, sims in ((ada, mine), (bob, theirs)):
            want = until(
                lambda s=sims: (
                    (w := expected_aggregates(web_tables, s)) and w[0][2] == len(s) and w
                ),
                60,
                tuned,
            )
            until(lambda o=owner, w=want: close(rows(web_tables, AGGREGATES, o, tag), w), 60, tuned)
        assert rows(
            web_tables,
            "SELECT DISTINCT owner FROM nnt_tag_aggregate WHERE tag = %s ORDER BY 1",
            tag,
        ) == [(ada,), (bob,)]

        live = until(
            lambda: (
                (g := live_by_owner(reader, tag))
                and g.get(ada, {}).get(("loss", 1), {}).get("count") == 2
                and g.get(bob, {}).get(("loss", 1), {}).get("count") == 1
                and g
            ),
            60,
            tuned,
        )
        assert set(live) == {ada, bob}  # every update names its owner
        assert live[bob][("loss", 1)]["min"] > 50 > live[ada][("loss", 1)]["max"]
    finally:
        reader.close()


def test_it_retries_a_refused_aggregate_write_until_the_database_takes_it(
    tuned: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    tag, sid = f"refused-{uuid.uuid4().hex[:8]}", uuid.uuid4()
    owner = f"ada-{tag}"
    log_from = len(tuned.text())
    with psycopg.connect(web_tables, autocommit=True) as conn:
        conn.execute(
            "ALTER TABLE nnt_tag_aggregate ADD CONSTRAINT nnt_test_refuse "
            f"CHECK (tag <> '{tag}') NOT VALID"
        )
        try:
            send(
                kafka_bootstrap,
                topics.STATUS,
                [StatusEvent(simulation_id=sid, status="running", owner=owner, tags=[tag])],
            )
            send(
                kafka_bootstrap,
                topics.EPOCHS,
                [EpochEvent(simulation_id=sid, epoch=1, total_epochs=1, metrics={"loss": 2.5})],
            )
            until(
                lambda: (
                    "tag aggregates" in tuned.text()[log_from:]
                    and "CheckViolation" in tuned.text()[log_from:]
                ),
                60,
                tuned,
            )
            until(lambda: tuned.text()[log_from:].count("CheckViolation") >= 2, 60, tuned)
            assert rows(web_tables, AGGREGATES, owner, tag) == []
        finally:
            conn.execute("ALTER TABLE nnt_tag_aggregate DROP CONSTRAINT nnt_test_refuse")
    got = until(lambda: rows(web_tables, AGGREGATES, owner, tag), 60, tuned)
    assert got == [("loss", 1, 1, 2.5, 2.5, 2.5, 0.0)]


def timescale_folds(url: str) -> bool:
    """Whether the database folds and thins itself (nnt_batch_metric is a hypertable)."""
    with psycopg.connect(url) as conn:
        if not conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone():
            return False
        hyper = conn.execute(
            "SELECT 1 FROM timescaledb_information.hypertables "
            "WHERE hypertable_name = 'nnt_batch_metric'"
        )
        return hyper.fetchone() is not None


def test_it_says_who_folds_and_thins(tuned: Worker, web_tables: str) -> None:
    said = "TimescaleDB hypertables" if timescale_folds(web_tables) else "native tables,"
    until(lambda: f"maintenance: {said}" in tuned.text(), 60, tuned)


# The reader's view of batch points (web/simulations/batch_api.py): the buckets of the
# continuous aggregate (none on native tables) and the rows of events not folded there.
POINTS = """
SELECT epoch, step, value, value_min, value_max, true FROM nnt_batch_bucket
WHERE simulation_id = %(s)s
UNION ALL
SELECT epoch, step, value, value_min, value_max, reduced FROM nnt_batch_metric r
WHERE simulation_id = %(s)s AND NOT EXISTS (
    SELECT 1 FROM nnt_batch_bucket b WHERE b.simulation_id = r.simulation_id
    AND b.metric = r.metric AND b.epoch = r.epoch AND b.at = r.at)
ORDER BY 1, 2
"""


def points(url: str, sid: uuid.UUID) -> list[tuple]:
    """Batch points of one simulation as a chart reads them."""
    with psycopg.connect(url) as conn:
        return conn.execute(POINTS, {"s": sid}).fetchall()


def fold(url: str) -> None:
    """On TimescaleDB, run the aggregate's refresh policy now (it runs every 15 minutes);
    natively the worker's timer folds (every second here)."""
    if not timescale_folds(url):
        return
    with psycopg.connect(url, autocommit=True) as conn:
        job = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_refresh_continuous_aggregate' "
            "AND hypertable_name = 'nnt_batch_bucket'"
        ).fetchone()
        assert job is not None, "no refresh policy on nnt_batch_bucket"
        conn.execute("CALL run_job(%s)", (job[0],))


def test_it_keeps_every_epoch_metric_and_reduces_old_batch_points(
    tuned: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, now = uuid.uuid4(), datetime.now(UTC)
    steps = [BatchPoint(step=s, metrics={"loss": float((s * 7) % 11)}) for s in range(25)]
    old = [
        EpochEvent(
            simulation_id=sid,
            epoch=e,
            total_epochs=3,
            metrics={"loss": 1.0 / e},
            batches=steps,
            at=now - timedelta(hours=3 - e * 0.1),
        )
        for e in (1, 2)
    ]
    recent = EpochEvent(
        simulation_id=sid, epoch=3, total_epochs=3, metrics={"loss": 0.3}, batches=steps, at=now
    )
    send(kafka_bootstrap, topics.EPOCHS, [*old, recent])
    metrics_sql = (
        "SELECT epoch, value FROM nnt_epoch_metric WHERE simulation_id = %s ORDER BY epoch"
    )
    # an event's batch points are committed with its epoch metrics
    metrics = until(
        lambda: (r := rows(web_tables, metrics_sql, sid)) and len(r) == 3 and r, 60, tuned
    )
    assert metrics == [(1, 1.0), (2, 0.5), (3, 0.3)]

    fold(web_tables)

    got = until(lambda: (r := points(web_tables, sid)) and len(r) == 3 + 3 + 25 and r, 60, tuned)
    values = [float((s * 7) % 11) for s in range(25)]
    buckets = [
        (9, values[9], min(values[:10]), max(values[:10])),
        (19, values[19], min(values[10:20]), max(values[10:20])),
        (24, values[24], min(values[20:]), max(values[20:])),
    ]
    for epoch in (1, 2):
        assert [(s, v, lo, hi) for e, s, v, lo, hi, red in got if e == epoch and red] == buckets
    assert [(s, v, red) for e, s, v, _, _, red in got if e == 3] == [
        (s, values[s], False) for s in range(25)
    ]

    send(kafka_bootstrap, topics.EPOCHS, old)  # a replay folds into the same buckets
    fold(web_tables)
    until(lambda: points(web_tables, sid) == got, 60, tuned)


def tensor(sid: uuid.UUID, epoch: int, at: datetime) -> list[bytes]:
    head = TensorHeader(
        simulation_id=sid,
        epoch=epoch,
        layer_index=0,
        layer_name="dense",
        kind="kernel",
        shape=[2, 2],
        chunks=2,
        at=at,
        stats=TensorStats(mean=float(epoch), hist_counts=[1, 3], hist_edges=[0, 1, 2]),
    )
    return [pack(head, b"ab"), pack(head.model_copy(update={"chunk": 1, "stats": None}), b"cd")]


def test_it_keeps_full_tensors_every_nth_epoch_and_thins_old_ones(
    tuned: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, now = uuid.uuid4(), datetime.now(UTC)
    fresh = [m for e in (1, 2, 3, 4) for m in tensor(sid, e, now)]
    aged = [m for e in (6, 12) for m in tensor(sid, e, now - timedelta(days=40))]
    produce(kafka_bootstrap, topics.TENSORS, [(str(sid), m) for m in fresh + aged])
    sql = (
        "SELECT epoch, chunk, chunks, data, stats->>'mean', reduced FROM nnt_tensor "
        "WHERE simulation_id = %s ORDER BY epoch, chunk"
    )
    want = [
        (1, 0, 0, None, "1.0", True),
        (2, 0, 2, b"ab", "2.0", False),
        (2, 1, 2, b"cd", None, False),
        (3, 0, 0, None, "3.0", True),
        (4, 0, 2, b"ab", "4.0", False),
        (4, 1, 2, b"cd", None, False),
        (6, 0, 0, None, "6.0", True),  # older than 30 days and not a multiple of 4: thinned
        (12, 0, 2, b"ab", "12.0", False),
        (12, 1, 2, b"cd", None, False),
    ]
    if timescale_folds(web_tables):  # the thinning job, with the worker's variables
        until(lambda: len(rows(web_tables, sql, sid)) == 10, 60, tuned)
        with psycopg.connect(web_tables, autocommit=True) as conn:
            conn.execute('CALL nnt_thin_tensors(0, \'{"thin_after": "30 days", "keep_every": 4}\')')
    until(lambda: rows(web_tables, sql, sid) == want, 60, tuned)
