"""The walking skeleton end to end: Kafka in, rows in PostgreSQL, updates on nnt.live."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import BatchPoint, EpochEvent
from schemas.live import LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from tests.streamworker import Reader, Worker, produce, produce_to, rows, until

pytestmark = pytest.mark.integration

METRICS = "SELECT epoch, metric, value FROM nnt_epoch_metric WHERE simulation_id = %s"


def epochs(sid: uuid.UUID, first: int, last: int) -> list[EpochEvent]:
    """Logged epochs first..last of one simulation."""
    return [
        EpochEvent(
            simulation_id=sid,
            epoch=i,
            total_epochs=last,
            learning_rate=0.01,
            metrics={"loss": 1 / i, "accuracy": i / 10},
            batches=[BatchPoint(step=s, metrics={"loss": 1 / i + s}) for s in (1, 2)],
        )
        for i in range(first, last + 1)
    ]


def expected(events: list[EpochEvent]) -> set[tuple]:
    return {(e.epoch, m, v) for e in events for m, v in e.points().items()}


def send(bootstrap: str, topic: str, events: list) -> None:
    produce(bootstrap, topic, [(str(e.simulation_id), dumps(e)) for e in events])


def test_it_stores_every_epoch_metric_once_even_when_replayed(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    sent = epochs(sid, 1, 5)
    send(kafka_bootstrap, topics.EPOCHS, sent)
    until(lambda: set(rows(web_tables, METRICS, sid)) == expected(sent), 60, worker)

    send(kafka_bootstrap, topics.EPOCHS, sent)  # replay, then a marker behind it (same key)
    marker = epochs(sid, 6, 6)
    send(kafka_bootstrap, topics.EPOCHS, marker)
    until(lambda: set(rows(web_tables, METRICS, sid)) == expected(sent + marker), 60, worker)
    assert len(rows(web_tables, METRICS, sid)) == len(expected(sent + marker))
    batch = rows(web_tables, "SELECT count(*) FROM nnt_batch_metric WHERE simulation_id = %s", sid)
    assert batch == [(12,)]


def test_it_publishes_new_points_on_live(worker: Worker, kafka_bootstrap: str) -> None:
    sid = uuid.uuid4()
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{sid}")
    try:
        send(kafka_bootstrap, topics.EPOCHS, epochs(sid, 1, 4))

        def points() -> dict[int, dict[str, float]] | None:
            updates = [LiveUpdate.model_validate_json(v) for v in reader.poll(str(sid))]
            got = {p.epoch: p.values for u in updates for p in u.points}
            return got if len(got) == 4 else None

        got = until(points, 60, worker)
    finally:
        reader.close()
    assert got[2] == {"loss": 0.5, "accuracy": 0.2, "learning_rate": 0.01}


def test_it_dead_letters_garbage_and_keeps_consuming(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{sid}")
    try:
        produce(kafka_bootstrap, topics.EPOCHS, [(str(sid), b"{not json")])
        after = epochs(sid, 1, 1)
        send(kafka_bootstrap, topics.EPOCHS, after)
        letters = until(lambda: reader.poll(str(sid)), 60, worker)
        until(lambda: set(rows(web_tables, METRICS, sid)) == expected(after), 60, worker)
    finally:
        reader.close()
    doc = json.loads(letters[0])
    assert doc["topic"] == topics.EPOCHS and doc["simulation_id"] == str(sid)
    assert "cannot decode" in doc["reason"]
    assert base64.b64decode(doc["value_b64"]) == b"{not json"


def test_it_projects_status_in_order_of_event_time(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    rows(
        web_tables,
        "INSERT INTO auth_user (username) VALUES ('ada') ON CONFLICT DO NOTHING RETURNING id",
    )
    [(ada,)] = rows(web_tables, "SELECT id FROM auth_user WHERE username = 'ada'")
    send(
        kafka_bootstrap,
        topics.STATUS,
        [
            StatusEvent(
                simulation_id=sid,
                status="running",
                epoch=1,
                total_epochs=3,
                at=t0,
                owner="ada",
                owner_id=ada,  # ownership goes by account id, never by name
                name="sdk run",
                tags=["cnn"],
            ),
            StatusEvent(
                simulation_id=sid,
                status="failed",
                epoch=2,
                total_epochs=3,
                message="OOM",
                at=t0 + timedelta(seconds=2),
            ),
            StatusEvent(
                simulation_id=sid,
                status="running",
                epoch=1,
                total_epochs=3,
                at=t0 + timedelta(seconds=1),
            ),  # late: history only
            StatusEvent(simulation_id=sid, status="accepted", at=t0 + timedelta(seconds=3)),
        ],
    )
    history = "SELECT count(*) FROM nnt_status_event WHERE simulation_id = %s"
    until(lambda: rows(web_tables, history, sid) == [(4,)], 60, worker)
    [sim] = rows(
        web_tables,
        "SELECT s.name, u.username, s.status, s.epoch, s.error, s.tags, "
        "s.started_at, s.finished_at FROM nnt_simulation s "
        "LEFT JOIN auth_user u ON u.id = s.owner_id WHERE s.id = %s",
        sid,
    )
    assert sim == ("sdk run", "ada", "failed", 2, "OOM", ["cnn"], t0, t0 + timedelta(seconds=2))


def test_it_keeps_tags_edited_in_the_web_when_the_run_reports_again(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    first = StatusEvent(simulation_id=sid, status="running", epoch=1, total_epochs=3, at=t0,
                        owner="ada", tags=["plan-tag"])  # fmt: skip
    send(kafka_bootstrap, topics.STATUS, [first])
    tags_of = "SELECT tags FROM nnt_simulation WHERE id = %s"
    until(lambda: rows(web_tables, tags_of, sid) == [(["plan-tag"],)], 60, worker)
    rows(web_tables, "UPDATE nnt_simulation SET tags = '{edited}' WHERE id = %s RETURNING id", sid)
    later = first.model_copy(update={"epoch": 2, "at": t0 + timedelta(seconds=1)})
    send(kafka_bootstrap, topics.STATUS, [later])
    epoch_of = "SELECT epoch, tags FROM nnt_simulation WHERE id = %s"
    until(lambda: rows(web_tables, epoch_of, sid)[0][0] == 2, 60, worker)
    assert rows(web_tables, epoch_of, sid) == [(2, ["edited"])]


def test_it_keeps_the_test_metrics_unrounded_and_a_resume_clears_them(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    done = StatusEvent(simulation_id=sid, status="finished", epoch=3, total_epochs=3, at=t0,
                       owner="ada", message="test: accuracy=0.9132, loss=nan",
                       metrics={"accuracy": 0.913245678, "loss": float("nan")})  # fmt: skip
    send(kafka_bootstrap, topics.STATUS, [done])
    stored = "SELECT status, test_metrics FROM nnt_simulation WHERE id = %s"
    until(lambda: rows(web_tables, stored, sid) == [("finished", {"accuracy": 0.913245678})],
          60, worker)  # fmt: skip
    again = StatusEvent(simulation_id=sid, status="running", epoch=3, total_epochs=6,
                        at=t0 + timedelta(seconds=1))  # fmt: skip
    send(kafka_bootstrap, topics.STATUS, [again])
    until(lambda: rows(web_tables, stored, sid) == [("running", None)], 60, worker)


def test_it_stores_tensors_and_resources(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    header = TensorHeader(
        simulation_id=sid,
        epoch=1,
        layer_index=0,
        layer_name="dense",
        kind="kernel",
        shape=[2, 2],
        chunks=2,
        stats=TensorStats(mean=0.5, hist_counts=[1, 3], hist_edges=[0, 1, 2]),
    )
    second = header.model_copy(update={"chunk": 1, "stats": None})
    produce(
        kafka_bootstrap,
        topics.TENSORS,
        [(str(sid), pack(header, b"ab")), (str(sid), pack(second, b"cd"))],
    )
    send(
        kafka_bootstrap,
        topics.RESOURCES,
        [ResourceSample(simulation_id=sid, cpu_percent=50, memory_bytes=1024)],
    )
    tensors = "SELECT chunk, data, stats->'hist_counts' FROM nnt_tensor WHERE simulation_id = %s ORDER BY chunk"
    got = until(
        lambda: (
            rows(web_tables, tensors, sid) if len(rows(web_tables, tensors, sid)) == 2 else None
        ),
        60,
        worker,
    )
    assert got == [(0, b"ab", [1, 3]), (1, b"cd", None)]
    res = "SELECT cpu_percent, memory_bytes FROM nnt_resource WHERE simulation_id = %s"
    assert until(lambda: rows(web_tables, res, sid), 60, worker) == [(50.0, 1024)]


TENSORS = (
    "SELECT epoch, chunk, data, stats, at FROM nnt_tensor WHERE simulation_id = %s "
    "ORDER BY epoch, chunk"
)
RESOURCES = (
    "SELECT at, cpu_percent, memory_bytes FROM nnt_resource WHERE simulation_id = %s ORDER BY at"
)
HISTORY = (
    "SELECT at, status, epoch, message FROM nnt_status_event WHERE simulation_id = %s ORDER BY at"
)
PROJECTED = "SELECT status, epoch, message, status_at FROM nnt_simulation WHERE id = %s"


def chunks(sid: uuid.UUID, epoch: int) -> list[tuple[str, bytes]]:
    """One two-chunk tensor of one epoch as (key, message) pairs."""
    head = TensorHeader(
        simulation_id=sid,
        epoch=epoch,
        layer_index=0,
        layer_name="dense",
        kind="kernel",
        shape=[2, 2],
        chunks=2,
        stats=TensorStats(mean=float(epoch)),
    )
    tail = head.model_copy(update={"chunk": 1, "stats": None})
    return [(str(sid), pack(head, b"ab")), (str(sid), pack(tail, b"cd"))]


def test_it_stores_tensors_status_and_resources_once_even_when_replayed(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, t0 = uuid.uuid4(), datetime.now(UTC)
    samples = [
        ResourceSample(
            simulation_id=sid, at=t0 + timedelta(seconds=i), cpu_percent=10 * i, memory_bytes=i
        )
        for i in (1, 2)
    ]
    status = [
        StatusEvent(simulation_id=sid, status="running", epoch=1, total_epochs=3, at=t0),
        StatusEvent(
            simulation_id=sid,
            status="paused",
            epoch=2,
            total_epochs=3,
            message="by ada",
            at=t0 + timedelta(seconds=1),
        ),
    ]
    tensor = chunks(sid, 1)
    for _ in range(2):  # the same events twice: a replay
        produce(kafka_bootstrap, topics.TENSORS, tensor)
        send(kafka_bootstrap, topics.RESOURCES, samples)
        send(kafka_bootstrap, topics.STATUS, status)
    # Markers behind the replays (same keys, so same partitions: read after them).
    produce(kafka_bootstrap, topics.TENSORS, chunks(sid, 2))
    marker = ResourceSample(
        simulation_id=sid, at=t0 + timedelta(seconds=9), cpu_percent=90, memory_bytes=9
    )
    send(kafka_bootstrap, topics.RESOURCES, [marker])
    resumed = StatusEvent(
        simulation_id=sid, status="running", epoch=2, total_epochs=3, at=t0 + timedelta(seconds=2)
    )
    send(kafka_bootstrap, topics.STATUS, [resumed])

    until(lambda: len(rows(web_tables, TENSORS, sid)) == 4, 60, worker)
    until(lambda: len(rows(web_tables, RESOURCES, sid)) == 3, 60, worker)
    until(lambda: len(rows(web_tables, HISTORY, sid)) == 3, 60, worker)
    assert [(e, c, d) for e, c, d, _, _ in rows(web_tables, TENSORS, sid)] == [
        (1, 0, b"ab"),
        (1, 1, b"cd"),
        (2, 0, b"ab"),
        (2, 1, b"cd"),
    ]
    assert rows(web_tables, RESOURCES, sid) == [
        (s.at, s.cpu_percent, s.memory_bytes) for s in [*samples, marker]
    ]
    assert rows(web_tables, HISTORY, sid) == [
        (e.at, e.status, e.epoch, e.message) for e in [*status, resumed]
    ]
    assert rows(web_tables, PROJECTED, sid) == [("running", 2, "", resumed.at)]


def test_it_keys_an_event_without_at_by_its_kafka_timestamp_so_replays_store_it_once(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    stamp = datetime(2025, 6, 1, 12, 0, 0, 250000, tzinfo=UTC)
    no_at = {
        topics.EPOCHS: {
            "simulation_id": str(sid),
            "epoch": 1,
            "total_epochs": 2,
            "metrics": {"loss": 0.5},
        },
        topics.RESOURCES: {"simulation_id": str(sid), "cpu_percent": 5, "memory_bytes": 7},
        topics.STATUS: {"simulation_id": str(sid), "status": "running", "epoch": 1},
    }
    for _ in range(2):  # one record delivered twice: both copies carry its timestamp
        for topic, doc in no_at.items():
            produce_to(
                kafka_bootstrap,
                topic,
                [(str(sid), json.dumps(doc).encode())],
                timestamp_ms=int(stamp.timestamp() * 1000),
            )
    # Markers behind them (same key, same partition): once stored, both copies were read.
    later = stamp + timedelta(hours=1)
    send(kafka_bootstrap, topics.EPOCHS, epochs(sid, 2, 2))
    send(
        kafka_bootstrap,
        topics.RESOURCES,
        [ResourceSample(simulation_id=sid, cpu_percent=6, memory_bytes=7, at=later)],
    )
    send(
        kafka_bootstrap,
        topics.STATUS,
        [StatusEvent(simulation_id=sid, status="paused", epoch=1, at=later)],
    )
    until(lambda: len(rows(web_tables, METRICS, sid)) == 4, 60, worker)
    got = rows(
        web_tables,
        "SELECT epoch, value, at FROM nnt_epoch_metric WHERE simulation_id = %s AND epoch = 1",
        sid,
    )
    assert got == [(1, 0.5, stamp)]
    res = "SELECT at, cpu_percent FROM nnt_resource WHERE simulation_id = %s ORDER BY at"
    hist = "SELECT at, status FROM nnt_status_event WHERE simulation_id = %s ORDER BY at"
    until(lambda: len(rows(web_tables, res, sid)) >= 2, 60, worker)
    until(lambda: len(rows(web_tables, hist, sid)) >= 2, 60, worker)
    assert rows(web_tables, res, sid) == [(stamp, 5.0), (later, 6.0)]
    assert rows(web_tables, hist, sid) == [(stamp, "running"), (later, "paused")]


COUNT_ALL = """
SELECT (SELECT count(*) FROM nnt_epoch_metric WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_batch_metric WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_tensor WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_resource WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_status_event WHERE simulation_id = %(s)s)
"""


def counts(pg_url: str, sid: uuid.UUID) -> tuple[int, ...]:
    """Rows of one simulation in epoch, batch, tensor, resource and status tables."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(COUNT_ALL, {"s": sid}).fetchone()
    assert row is not None
    return tuple(row)


def everything(sid: uuid.UUID, at: datetime) -> dict[str, list[tuple[str, bytes]]]:
    """One event of every kind for a simulation, as (key, message) per topic."""
    epoch = EpochEvent(
        simulation_id=sid,
        epoch=1,
        total_epochs=3,
        metrics={"loss": 1.0},
        batches=[BatchPoint(step=1, metrics={"loss": 1.1})],
        at=at,
    )
    sample = ResourceSample(simulation_id=sid, cpu_percent=1, memory_bytes=1, at=at)
    status = StatusEvent(simulation_id=sid, status="running", epoch=1, total_epochs=3, at=at)
    return {
        topics.EPOCHS: [(str(sid), dumps(epoch))],
        topics.TENSORS: chunks(sid, 1),
        topics.RESOURCES: [(str(sid), dumps(sample))],
        topics.STATUS: [(str(sid), dumps(status))],
    }


def test_it_deletes_a_simulations_rows_and_late_events_bring_none_back(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, other, t0 = uuid.uuid4(), uuid.uuid4(), datetime.now(UTC)
    send(
        kafka_bootstrap,
        topics.STATUS,
        [
            StatusEvent(
                simulation_id=sid, status="queued", owner="ada", at=t0 - timedelta(seconds=1)
            )
        ],
    )
    for topic, messages in everything(sid, t0).items():
        produce_to(kafka_bootstrap, topic, messages, partition=0)
    until(lambda: all(counts(web_tables, sid)), 60, worker)
    assert counts(web_tables, other) == (0, 0, 0, 0, 0)

    # The orchestrator's clock lags: `deleted` is final anyway.
    send(
        kafka_bootstrap,
        topics.STATUS,
        [StatusEvent(simulation_id=sid, status="deleted", at=t0 - timedelta(seconds=30))],
    )
    until(lambda: counts(web_tables, sid) == (0, 0, 0, 0, 0), 60, worker)
    assert rows(web_tables, "SELECT status FROM nnt_simulation WHERE id = %s", sid) == [
        ("deleted",)
    ]

    # Late events (later than the delete), then another run's events behind them on the same
    # partitions: once those are stored, the late ones have been read.
    for topic, messages in everything(sid, t0 + timedelta(seconds=5)).items():
        produce_to(kafka_bootstrap, topic, messages, partition=0)
    for topic, messages in everything(other, t0).items():
        produce_to(kafka_bootstrap, topic, messages, partition=0)
    until(lambda: all(counts(web_tables, other)), 60, worker)
    assert counts(web_tables, sid) == (0, 0, 0, 0, 0)
    assert rows(web_tables, "SELECT status FROM nnt_simulation WHERE id = %s", sid) == [
        ("deleted",)
    ]


def test_it_retries_a_schema_error_instead_of_dead_lettering_the_events(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    res = "SELECT cpu_percent FROM nnt_resource WHERE simulation_id = %s"
    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{sid}")
    log_from = len(worker.text())
    with psycopg.connect(web_tables, autocommit=True) as conn:
        conn.execute("ALTER TABLE nnt_resource RENAME TO nnt_resource_away")
        try:
            send(
                kafka_bootstrap,
                topics.RESOURCES,
                [ResourceSample(simulation_id=sid, cpu_percent=42, memory_bytes=1)],
            )
            until(lambda: "UndefinedTable" in worker.text()[log_from:], 60, worker)
            until(
                lambda: worker.text()[log_from:].count("database schema refused") >= 3, 60, worker
            )
        finally:
            conn.execute("ALTER TABLE nnt_resource_away RENAME TO nnt_resource")
    try:
        assert until(lambda: rows(web_tables, res, sid), 60, worker) == [(42.0,)]
        assert reader.poll(str(sid)) == []
    finally:
        reader.close()
