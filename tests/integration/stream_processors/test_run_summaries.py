"""Per-run summaries kept by the stream worker: each metric's last and best values and the
run's health flags after epochs and tensors arrive out of order, their removal with the run,
and the backfill of runs stored before the summary tables existed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from infra import timeseries
from schemas import topics
from schemas.codecs import dumps
from schemas.epochs import EpochEvent
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, TensorStats, pack
from store import summaries
from tests.streamworker import Worker, produce, produce_to, rows, until

pytestmark = pytest.mark.integration

SUMMARY = """SELECT metric, last, last_epoch, best_min, min_epoch, best_max, max_epoch, nonfinite
FROM nnt_run_metric WHERE simulation_id = %s ORDER BY metric"""
HEALTH = "SELECT tensor_epoch, flags, nonfinite_metric FROM nnt_run_health WHERE simulation_id = %s"
EPOCHS = "SELECT DISTINCT epoch FROM nnt_epoch_metric WHERE simulation_id = %s ORDER BY epoch"
TENSORS = "SELECT count(*) FROM nnt_tensor WHERE simulation_id = %s"
LOSS = {1: 0.9, 2: 0.5, 3: 0.7, 4: 0.2, 5: 0.4}
ACCURACY = {1: 0.1, 2: 0.6, 3: 0.5, 4: 0.9, 5: 0.8}
T0 = datetime(2025, 6, 1, tzinfo=UTC)


def epoch(sid: uuid.UUID, i: int, at: datetime = T0, **metrics: float) -> EpochEvent:
    """Logged epoch `i`, its metrics taken from LOSS and ACCURACY unless given."""
    values = {"loss": LOSS[i], "accuracy": ACCURACY[i]} | metrics
    return EpochEvent(
        simulation_id=sid, epoch=i, total_epochs=5, metrics=values, at=at + timedelta(minutes=i)
    )


def send(bootstrap: str, events: list[EpochEvent]) -> None:
    produce(bootstrap, topics.EPOCHS, [(str(e.simulation_id), dumps(e)) for e in events])


def tensor(sid: uuid.UUID, i: int, layer: int, flags: list[str]) -> tuple[str, bytes]:
    """A statistics-only gradient of one layer at epoch `i`, with its health flags."""
    head = TensorHeader(
        simulation_id=sid, epoch=i, layer_index=layer, layer_name=f"dense_{layer}",
        kind="gradient", shape=[2], chunks=0, stats=TensorStats(norm=1.0, flags=flags),
    )  # fmt: skip
    return str(sid), pack(head, b"")


def test_it_keeps_last_and_best_of_each_metric_whatever_the_order_of_epochs(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    send(kafka_bootstrap, [epoch(sid, 5), epoch(sid, 3)])
    until(lambda: rows(web_tables, EPOCHS, sid) == [(3,), (5,)], 60, worker)
    # Earlier epochs after later ones, one of them twice, one with a non-finite metric.
    send(kafka_bootstrap, [epoch(sid, 1), epoch(sid, 4), epoch(sid, 1)])
    send(kafka_bootstrap, [epoch(sid, 2, val_loss=float("nan"))])
    until(lambda: len(rows(web_tables, EPOCHS, sid)) == 5, 60, worker)
    assert rows(web_tables, SUMMARY, sid) == [
        ("accuracy", 0.8, 5, 0.1, 1, 0.9, 4, False),
        ("loss", 0.4, 5, 0.2, 4, 0.9, 1, False),
        ("val_loss", None, None, None, None, None, None, True),
    ]
    assert rows(web_tables, HEALTH, sid) == [(None, [], True)]

    # Epoch 5 logged again later (a run resumed from an earlier checkpoint): its new value
    # is the last one; the best keep their first epoch on a tie.
    send(kafka_bootstrap, [epoch(sid, 5, at=T0 + timedelta(hours=1), loss=0.2)])
    until(lambda: rows(web_tables, SUMMARY, sid)[1][1] == 0.2, 60, worker)
    assert rows(web_tables, SUMMARY, sid)[1] == ("loss", 0.2, 5, 0.2, 4, 0.9, 1, False)


def test_it_keeps_the_health_flags_of_the_latest_epoch_with_tensors(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    produce(
        kafka_bootstrap, topics.TENSORS, [tensor(sid, 2, 0, ["dead_units"]), tensor(sid, 2, 1, [])]
    )
    until(lambda: rows(web_tables, HEALTH, sid), 60, worker)
    assert rows(web_tables, HEALTH, sid) == [(2, ["dead_units"], False)]
    # An older epoch changes nothing; more tensors of the same epoch add their flags.
    produce(kafka_bootstrap, topics.TENSORS, [tensor(sid, 1, 0, ["exploding_gradient"])])
    produce(
        kafka_bootstrap, topics.TENSORS, [tensor(sid, 2, 2, ["vanishing_gradient", "dead_units"])]
    )
    until(lambda: rows(web_tables, TENSORS, sid) == [(4,)], 60, worker)
    assert rows(web_tables, HEALTH, sid) == [(2, ["dead_units", "vanishing_gradient"], False)]
    # A later epoch without flags: healthy again.
    produce(kafka_bootstrap, topics.TENSORS, [tensor(sid, 3, 0, []), tensor(sid, 3, 1, [])])
    until(lambda: rows(web_tables, HEALTH, sid) == [(3, [], False)], 60, worker)


def test_it_removes_a_runs_summaries_with_the_run_and_late_events_bring_none_back(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, other = uuid.uuid4(), uuid.uuid4()
    queued = StatusEvent(simulation_id=sid, status="queued", owner="ada", at=T0)
    produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(queued))])
    send(kafka_bootstrap, [epoch(sid, 1)])
    produce(kafka_bootstrap, topics.TENSORS, [tensor(sid, 1, 0, ["dead_units"])])
    until(lambda: len(rows(web_tables, SUMMARY, sid)) == 2, 60, worker)
    until(lambda: rows(web_tables, HEALTH, sid) == [(1, ["dead_units"], False)], 60, worker)

    deleted = StatusEvent(simulation_id=sid, status="deleted", at=T0 + timedelta(hours=1))
    produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(deleted))])
    until(
        lambda: not rows(web_tables, SUMMARY, sid) and not rows(web_tables, HEALTH, sid), 60, worker
    )

    # Late events, then another run's behind them on the same partitions.
    late = epoch(sid, 2)
    for sim in (sid, other):
        produce_to(
            kafka_bootstrap,
            topics.EPOCHS,
            [(str(sim), dumps(late.model_copy(update={"simulation_id": sim})))],
            partition=0,
        )
        produce_to(kafka_bootstrap, topics.TENSORS, [tensor(sim, 2, 0, [])], partition=0)
    until(lambda: rows(web_tables, SUMMARY, other) and rows(web_tables, HEALTH, other), 60, worker)
    assert rows(web_tables, SUMMARY, sid) == [] and rows(web_tables, HEALTH, sid) == []


def test_it_fills_the_summaries_of_runs_stored_before_them_once(web_tables: str) -> None:
    sid = uuid.uuid4()
    points = [(sid, e, "val_accuracy", v, T0) for e, v in ((1, 0.5), (2, 0.8), (3, 0.7))]
    with psycopg.connect(web_tables, autocommit=True) as conn:
        conn.cursor().executemany(
            "INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", points
        )
        conn.execute(
            "INSERT INTO nnt_tensor (simulation_id, layer_index, layer_name, kind, epoch, chunk, "
            "chunks, dtype, shape, compression, stats, at) VALUES "
            "(%s, 0, 'd', 'gradient', 3, 0, 0, 'float32', '{2}', 'zstd', "
            '\'{"flags": ["vanishing_gradient"]}\', %s)',
            (sid, T0),
        )
        conn.execute("COMMENT ON TABLE nnt_run_metric IS NULL")  # as before the tables existed
    timeseries.apply(web_tables)
    assert rows(web_tables, SUMMARY, sid) == [("val_accuracy", 0.7, 3, 0.5, 1, 0.8, 2, False)]
    assert rows(web_tables, HEALTH, sid) == [(3, ["vanishing_gradient"], False)]
    comment = "SELECT obj_description('nnt_run_metric'::regclass, 'pg_class')"
    assert rows(web_tables, comment) == [(summaries.FILLED,)]

    with psycopg.connect(web_tables, autocommit=True) as conn:  # filled once: not again
        conn.execute(
            "INSERT INTO nnt_epoch_metric VALUES (%s, 4, 'val_accuracy', 0.99, %s)", (sid, T0)
        )
    timeseries.apply(web_tables)
    assert rows(web_tables, SUMMARY, sid)[0][5] == 0.8
