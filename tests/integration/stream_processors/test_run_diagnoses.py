"""Diagnoses kept by the stream worker: the rows of each run's problems and evidence, which of
them are active after epochs arrive in any order or twice, the live update sent once per
change of a run's active set, and their removal with the run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import topics
from schemas.codecs import dumps
from schemas.diagnosis import TITLES, Diagnosis, Evidence, LayerEvidence, TrendEvidence
from schemas.epochs import EpochEvent
from schemas.live import LiveUpdate
from schemas.status import StatusEvent
from tests.streamworker import Reader, Worker, produce, produce_to, rows, until

pytestmark = pytest.mark.integration

T0 = datetime(2025, 6, 1, tzinfo=UTC)
DIAGNOSES = """SELECT problem, severity, summary, layers, first_epoch, last_epoch, active
FROM nnt_run_diagnosis WHERE simulation_id = %s ORDER BY problem"""
EVIDENCE = "SELECT epoch, evidence FROM nnt_epoch_evidence WHERE simulation_id = %s ORDER BY epoch"
DIAGNOSED = "SELECT diagnosed_epoch FROM nnt_run_health WHERE simulation_id = %s"
SEVERITY = {"vanishing_gradients": "warning", "dead_units": "warning", "divergence": "fatal"}


def problem(name: str, first: int, last: int, summary: str = "") -> Diagnosis:
    """One diagnosis as the trainer reports it at epoch `last`."""
    return Diagnosis(
        problem=name, severity=SEVERITY[name], title=TITLES[name],  # type: ignore[arg-type]
        summary=summary or f"{name} since epoch {first}", fix="try something else",
        layers=["dense", "dense_1"] if name != "divergence" else [], first_epoch=first,
        last_epoch=last, evidence={"grad_ratio": 1e-6, "layer": "dense"},
    )  # fmt: skip


def epoch(sid: uuid.UUID, i: int, found: list[Diagnosis] | None, late: int = 0) -> EpochEvent:
    """Logged epoch `i` with its evidence and diagnoses (None: not diagnosed)."""
    evidence = Evidence(
        epoch=i,
        layers=[LayerEvidence(layer_index=0, layer_name="dense", grad_ratio=10.0**-i)],
        trend=TrendEvidence(loss=1.0 / i, first_loss=1.0),
    )
    return EpochEvent(
        simulation_id=sid, epoch=i, total_epochs=9, metrics={"loss": 1.0 / i},
        at=T0 + timedelta(minutes=i, hours=late), evidence=evidence, diagnoses=found,
    )  # fmt: skip


def send(bootstrap: str, *events: EpochEvent) -> None:
    produce(bootstrap, topics.EPOCHS, [(str(e.simulation_id), dumps(e)) for e in events])


def queued(bootstrap: str, pg_url: str, sid: uuid.UUID, owner: str, worker: Worker) -> None:
    """The run's row, with its owner, before any epoch (as the orchestrator makes it)."""
    event = StatusEvent(simulation_id=sid, status="queued", owner=owner, at=T0)
    produce(bootstrap, topics.STATUS, [(str(sid), dumps(event))])
    until(lambda: rows(pg_url, "SELECT 1 FROM nnt_simulation WHERE id = %s", sid), 60, worker)


def updates(reader: Reader, sid: uuid.UUID) -> list[LiveUpdate]:
    """The `diagnosis` live updates of one run so far."""
    seen = [LiveUpdate.model_validate_json(v) for v in reader.poll(str(sid))]
    return [u for u in seen if u.kind == "diagnosis"]


def active_sets(found: list[LiveUpdate]) -> list[tuple[str, list[str]]]:
    return [
        (u.health.verdict if u.health else "", [d.problem for d in u.diagnoses or []])
        for u in found
    ]


def test_it_keeps_a_runs_diagnoses_and_tells_the_pages_once_per_change(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    reader = Reader(kafka_bootstrap, topics.LIVE, f"test-{sid}")
    try:
        queued(kafka_bootstrap, web_tables, sid, "ada", worker)
        send(kafka_bootstrap, epoch(sid, 1, []))  # diagnosed healthy
        until(lambda: rows(web_tables, DIAGNOSED, sid) == [(1,)], 60, worker)
        send(kafka_bootstrap, epoch(sid, 2, [problem("vanishing_gradients", 2, 2)]))
        until(lambda: rows(web_tables, DIAGNOSED, sid) == [(2,)], 60, worker)
        assert rows(web_tables, DIAGNOSES, sid) == [
            ("vanishing_gradients", "warning", "vanishing_gradients since epoch 2",
             ["dense", "dense_1"], 2, 2, True),
        ]  # fmt: skip
        # Still there a logged epoch later: the same set, so no update for the pages.
        send(kafka_bootstrap, epoch(sid, 3, [problem("vanishing_gradients", 2, 3, "worse")]))
        until(lambda: rows(web_tables, DIAGNOSED, sid) == [(3,)], 60, worker)
        # Gone at epoch 4: inactive, kept with the epochs it was seen.
        send(kafka_bootstrap, epoch(sid, 4, []))
        until(lambda: rows(web_tables, DIAGNOSED, sid) == [(4,)], 60, worker)
        assert rows(web_tables, DIAGNOSES, sid) == [
            ("vanishing_gradients", "warning", "worse", ["dense", "dense_1"], 2, 3, False),
        ]
        send(kafka_bootstrap, epoch(sid, 5, [problem("divergence", 5, 5)]))
        found = until(lambda: updates(reader, sid)[3:] and updates(reader, sid), 60, worker)
    finally:
        reader.close()
    assert active_sets(found) == [
        ("healthy", []),
        ("warning", ["vanishing_gradients"]),
        ("healthy", []),
        ("failing", ["divergence"]),
    ]
    assert all(u.owner == "ada" for u in found), "the owner's list pages listen by owner"
    last = found[-1].diagnoses or []
    assert last[0].title == "Diverging loss" and last[0].first_epoch == 5
    assert last[0].fix == "try something else" and "active" not in last[0].model_dump()
    evidence = rows(web_tables, EVIDENCE, sid)
    assert [e for e, _ in evidence] == [1, 2, 3, 4, 5]
    assert evidence[1][1]["layers"][0] == {
        "layer_index": 0, "layer_name": "dense", "grad_ratio": 0.01,
    }  # fmt: skip
    assert evidence[1][1]["trend"]["loss"] == 0.5


def test_a_later_epoch_decides_whatever_the_order_epochs_arrive_in(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid = uuid.uuid4()
    send(kafka_bootstrap, epoch(sid, 5, [problem("vanishing_gradients", 4, 5, "at five")]))
    until(lambda: rows(web_tables, DIAGNOSED, sid) == [(5,)], 60, worker)
    both = [problem("vanishing_gradients", 3, 3, "at three"), problem("dead_units", 3, 3)]
    send(kafka_bootstrap, epoch(sid, 3, both), epoch(sid, 3, both))  # late, and twice
    until(lambda: len(rows(web_tables, DIAGNOSES, sid)) == 2, 60, worker)
    want = [
        ("dead_units", "warning", "dead_units since epoch 3", ["dense", "dense_1"], 3, 3, False),
        ("vanishing_gradients", "warning", "at five", ["dense", "dense_1"], 3, 5, True),
    ]
    assert rows(web_tables, DIAGNOSES, sid) == want
    assert rows(web_tables, DIAGNOSED, sid) == [(5,)]
    # An epoch without diagnoses (an older trainer) says nothing about them.
    send(kafka_bootstrap, epoch(sid, 6, None))
    until(lambda: len(rows(web_tables, EVIDENCE, sid)) == 3, 60, worker)
    assert rows(web_tables, DIAGNOSES, sid) == want and rows(web_tables, DIAGNOSED, sid) == [(5,)]
    # Epoch 5 logged again later (a run resumed from a checkpoint), now healthy: it decides.
    send(kafka_bootstrap, epoch(sid, 5, [], late=1))
    until(lambda: not [r for r in rows(web_tables, DIAGNOSES, sid) if r[6]], 60, worker)


def test_it_removes_a_runs_diagnoses_with_the_run_and_late_events_bring_none_back(
    worker: Worker, kafka_bootstrap: str, web_tables: str
) -> None:
    sid, other = uuid.uuid4(), uuid.uuid4()
    queued(kafka_bootstrap, web_tables, sid, "bo", worker)
    send(kafka_bootstrap, epoch(sid, 1, [problem("dead_units", 1, 1)]))
    until(lambda: rows(web_tables, DIAGNOSES, sid) and rows(web_tables, EVIDENCE, sid), 60, worker)
    deleted = StatusEvent(simulation_id=sid, status="deleted", at=T0 + timedelta(hours=1))
    produce(kafka_bootstrap, topics.STATUS, [(str(sid), dumps(deleted))])
    until(lambda: not rows(web_tables, DIAGNOSES, sid), 60, worker)
    assert rows(web_tables, EVIDENCE, sid) == [] and rows(web_tables, DIAGNOSED, sid) == []
    # A late epoch, then another run's behind it on the same partition.
    for sim in (sid, other):
        late: Any = epoch(sim, 2, [problem("dead_units", 1, 2)])
        produce_to(kafka_bootstrap, topics.EPOCHS, [(str(sim), dumps(late))], partition=0)
    until(lambda: rows(web_tables, DIAGNOSES, other), 60, worker)
    assert rows(web_tables, DIAGNOSES, sid) == [] and rows(web_tables, EVIDENCE, sid) == []
