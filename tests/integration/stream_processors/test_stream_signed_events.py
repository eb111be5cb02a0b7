"""Events only from their run, on the real stack: a real worker, Kafka and PostgreSQL.

The attack: a hand-made event on nnt.epochs was stored into another user's charts, and events
of simulation ids that do not exist were stored too. Now only events signed with the key of
the run they name (or, on nnt.status, the orchestrator's key) become rows; the rest are
dead-lettered with their reason and the worker goes on.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import confluent_kafka
import psycopg
import pytest

from schemas import auth, topics
from schemas.codecs import dumps
from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from tests.streamworker import Reader, Worker, produce, rows, run_key, secret, until

pytestmark = pytest.mark.integration

COUNTS = """
SELECT (SELECT count(*) FROM nnt_epoch_metric WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_tensor WHERE simulation_id = %(s)s),
       (SELECT count(*) FROM nnt_status_event WHERE simulation_id = %(s)s)
"""


def counts(pg_url: str, sid: uuid.UUID) -> tuple[int, int, int]:
    """Epoch metric, tensor and status rows of one simulation."""
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(COUNTS, {"s": sid}).fetchone()
    return tuple(row)  # type: ignore[arg-type, return-value]


def existing(pg_url: str, owner: str) -> uuid.UUID:
    """A simulation the web created for `owner` (its row in nnt_simulation)."""
    sid = uuid.uuid4()
    rows(pg_url, "INSERT INTO nnt_simulation (id, owner_name, name) VALUES (%s, %s, 'run') "
         "RETURNING id", sid, owner)  # fmt: skip
    return sid


def epoch(sid: uuid.UUID, n: int) -> bytes:
    return dumps(EpochEvent(simulation_id=sid, epoch=n, total_epochs=9, metrics={"loss": 1 / n}))


def tensor(sid: uuid.UUID) -> bytes:
    header = TensorHeader(simulation_id=sid, epoch=1, layer_index=0, layer_name="dense",
                          kind="kernel", shape=[2], stats=TensorStats(mean=0.5))  # fmt: skip
    return pack(header, b"ab")


def status(sid: uuid.UUID | None, state: str = "running") -> bytes:
    return dumps(StatusEvent(simulation_id=sid, status=state, epoch=1, at=datetime.now(UTC)))


def send_with(bootstrap: str, topic: str, key: str, value: bytes, signing_key: str) -> None:
    """One message signed with `signing_key`, whatever run the event names."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap})
    header = (auth.SIGNATURE_HEADER, auth.mac(signing_key, value).encode())
    producer.produce(topic, key=key.encode(), value=value, headers=[header])
    assert producer.flush(30) == 0


def letters(reader: Reader, key: str, count: int, worker: Worker) -> list[dict]:
    """The first `count` dead letters of messages keyed `key`."""
    found = until(lambda: len(reader.poll(key)) >= count or None, 60, worker)
    assert found
    return [json.loads(v) for v in reader.poll(key)]


def test_it_dead_letters_unsigned_events_of_an_existing_run_and_of_a_made_up_id(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    victim, made_up = existing(web_tables, "victim"), uuid.uuid4()
    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{victim}")
    try:
        for sid in (victim, made_up):
            produce(kafka_bootstrap, topics.EPOCHS, [(str(sid), epoch(sid, 1))], sign=False)
        for sid in (victim, made_up):
            [doc] = letters(reader, str(sid), 1, worker)
            assert (doc["topic"], doc["simulation_id"]) == (topics.EPOCHS, str(sid))
            assert doc["reason"] == "unsigned event"
        # The worker goes on: the victim's own (signed) epoch behind it is stored.
        produce(kafka_bootstrap, topics.EPOCHS, [(str(victim), epoch(victim, 2))])
        metric = "SELECT epoch FROM nnt_epoch_metric WHERE simulation_id = %s"
        assert until(lambda: rows(web_tables, metric, victim), 60, worker) == [(2,)]
    finally:
        reader.close()
    assert counts(web_tables, made_up) == (0, 0, 0)


def test_it_dead_letters_events_signed_with_another_runs_key_on_every_topic(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    victim, attacker = existing(web_tables, "victim"), existing(web_tables, "attacker")
    their_key = run_key(attacker)  # what an SDK script of the attacker legitimately holds
    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{victim}")
    try:
        for topic, value in (
            (topics.EPOCHS, epoch(victim, 1)),
            (topics.TENSORS, tensor(victim)),
            (topics.STATUS, status(victim, "failed")),
        ):
            # Keyed as the attacker's run too: the event's own simulation id decides.
            send_with(kafka_bootstrap, topic, str(attacker), value, their_key)
        docs = letters(reader, str(attacker), 3, worker)
    finally:
        reader.close()
    assert sorted(d["topic"] for d in docs) == sorted(
        [topics.EPOCHS, topics.TENSORS, topics.STATUS]
    )
    assert {d["reason"] for d in docs} == {f"bad signature for simulation {victim}"}
    assert counts(web_tables, victim) == (0, 0, 0)
    sim = "SELECT status FROM nnt_simulation WHERE id = %s"
    assert rows(web_tables, sim, victim) == [("queued",)]


def test_it_stores_events_signed_by_their_run_and_statuses_signed_by_an_orchestrator(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = existing(web_tables, "owner")
    orchestrator = auth.service_key(secret(), "orchestrator")
    send_with(kafka_bootstrap, topics.STATUS, str(sid), status(sid, "starting"), orchestrator)
    send_with(kafka_bootstrap, topics.EPOCHS, str(sid), epoch(sid, 1), run_key(sid))
    send_with(kafka_bootstrap, topics.TENSORS, str(sid), tensor(sid), run_key(sid))
    until(lambda: counts(web_tables, sid) == (1, 1, 1), 60, worker)
    # The orchestrator's key signs statuses only: its epoch event is not stored.
    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{sid}")
    try:
        send_with(kafka_bootstrap, topics.EPOCHS, str(sid), epoch(sid, 2), orchestrator)
        [doc] = letters(reader, str(sid), 1, worker)
    finally:
        reader.close()
    assert doc["reason"] == f"bad signature for simulation {sid}"
    assert counts(web_tables, sid) == (1, 1, 1)


def test_it_stores_resource_samples_only_from_an_orchestrator(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = existing(web_tables, "owner")

    def sample(cpu: float) -> bytes:
        return dumps(ResourceSample(simulation_id=sid, cpu_percent=cpu, memory_bytes=1))

    reader = Reader(kafka_bootstrap, topics.DEAD_LETTER, f"test-{sid}")
    try:
        # The run's own trainer holds its run key: it still cannot report its own use.
        send_with(kafka_bootstrap, topics.RESOURCES, str(sid), sample(1), run_key(sid))
        produce(kafka_bootstrap, topics.RESOURCES, [(str(sid), sample(2))], sign=False)
        docs = letters(reader, str(sid), 2, worker)
    finally:
        reader.close()
    assert sorted(d["reason"] for d in docs) == [
        f"bad signature for simulation {sid}: only an orchestrator sends these",
        "unsigned event",
    ]
    orchestrator = auth.service_key(secret(), "orchestrator")
    send_with(kafka_bootstrap, topics.RESOURCES, str(sid), sample(3), orchestrator)
    stored = "SELECT cpu_percent FROM nnt_resource WHERE simulation_id = %s"
    assert until(lambda: rows(web_tables, stored, sid), 60, worker) == [(3.0,)]
