"""The walking skeleton end to end: Kafka in, rows in PostgreSQL, updates on nnt.live."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from conftest import rows

from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import BatchPoint, EpochEvent
from schemas.live import LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from tests.streamworker import Reader, Worker, produce, until

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
