"""`nnt.live` updates keep the exact wire the pages read while their records are typed."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import codecs
from schemas.diagnosis import Diagnosis
from schemas.live import LiveHealth, LiveStatus, LiveUpdate, RunRow, TagAggregate

SIM = uuid.UUID("11111111-2222-3333-4444-555555555555")
# One update of each kind as the dict-typed records (before they were models) put it on
# `nnt.live`, byte for byte: the JavaScript reads these keys, nulls included.
WIRE = {
    "epochs": '{"kind":"epochs","simulation_id":"11111111-2222-3333-4444-555555555555","points":[{"epoch":3,"values":{"loss":0.5},"at":"2026-01-02T03:04:05.678000Z"},{"epoch":4,"values":{"loss":0.4}}],"aggregates":[],"sent_at":"2026-01-02T03:04:05.678000Z"}',
    "status": '{"kind":"status","simulation_id":"11111111-2222-3333-4444-555555555555","owner":"ada","points":[],"status":{"status":"running","epoch":2,"total_epochs":9,"message":""},"aggregates":[],"sent_at":"2026-01-02T03:04:05.678000Z"}',
    "failed": '{"kind":"status","simulation_id":"11111111-2222-3333-4444-555555555555","owner":"ada","points":[],"status":{"status":"failed","epoch":2,"total_epochs":9,"message":"ValueError: x","error":"Traceback...\\nValueError: x"},"aggregates":[],"sent_at":"2026-01-02T03:04:05.678000Z"}',
    "tag": '{"kind":"tag","tag":"sweep","owner":"ada","points":[],"aggregates":[{"metric":"loss","epoch":1,"count":2,"mean":0.5,"min":0.4,"max":0.6,"std":0.1},{"metric":"acc","epoch":1,"count":0,"mean":null,"min":null,"max":null,"std":null}],"sent_at":"2026-01-02T03:04:05.678000Z"}',
    "row": '{"kind":"row","simulation_id":"11111111-2222-3333-4444-555555555555","owner":"ada","points":[],"aggregates":[],"row":{"id":"11111111-2222-3333-4444-555555555555","experiment_id":null,"name":"run","owner":"ada","status":"queued","epoch":0,"total_epochs":5,"tags":["a"],"created_at":"2026-01-02T03:04:05.678000+00:00"},"sent_at":"2026-01-02T03:04:05.678000Z"}',
    "diagnosis": '{"kind":"diagnosis","simulation_id":"11111111-2222-3333-4444-555555555555","owner":"ada","points":[],"aggregates":[],"diagnoses":[{"problem":"dead_units","severity":"warning","title":"Dead ReLU units","summary":"70% never fire","fix":"try LeakyReLU","layers":["dense_1"],"first_epoch":2,"last_epoch":3,"evidence":{"dead_fraction":0.7,"alpha":null,"note":"x"}}],"health":{"verdict":"warning","flags":["nonfinite_metric"]},"sent_at":"2026-01-02T03:04:05.678000Z"}',
}  # fmt: skip


@pytest.mark.parametrize("name", list(WIRE))
def test_it_round_trips_every_kind_to_the_same_bytes(name: str) -> None:
    update = codecs.loads(LiveUpdate, WIRE[name])
    assert codecs.dumps(update) == WIRE[name].encode()


def test_it_reads_the_records_as_typed_models() -> None:
    status = codecs.loads(LiveUpdate, WIRE["failed"]).status
    assert isinstance(status, LiveStatus) and status.error == "Traceback...\nValueError: x"
    aggregates = codecs.loads(LiveUpdate, WIRE["tag"]).aggregates
    assert [type(a) for a in aggregates] == [TagAggregate, TagAggregate]
    assert (aggregates[0].std, aggregates[1].mean) == (0.1, None)
    row = codecs.loads(LiveUpdate, WIRE["row"]).row
    assert isinstance(row, RunRow) and row.id == SIM and row.experiment_id is None
    assert row.created_at == datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    diagnosis = codecs.loads(LiveUpdate, WIRE["diagnosis"])
    assert [type(d) for d in diagnosis.diagnoses or []] == [Diagnosis]
    assert diagnosis.health == LiveHealth(verdict="warning", flags=["nonfinite_metric"])


def test_a_record_keeps_the_nulls_it_was_given_and_leaves_out_what_it_was_not() -> None:
    # The stream workers give every statistic, null while no run contributes; a status
    # carries `error` only on `failed`.
    given = {"metric": "acc", "epoch": 1, "count": 0, "mean": None, "min": None, "max": None,
             "std": None}  # fmt: skip
    update = LiveUpdate(
        kind="tag", tag="t", owner="ada", aggregates=[TagAggregate.model_validate(given)]
    )
    assert json.loads(codecs.dumps(update))["aggregates"] == [given]
    running = LiveUpdate(kind="status", simulation_id=SIM, status=LiveStatus(status="running"))
    assert json.loads(codecs.dumps(running))["status"] == {"status": "running"}
    assert running.status is not None and running.status.epoch == 0


@pytest.mark.parametrize(
    "record",
    [
        {"status": {"status": "exploded"}},
        {"aggregates": [{"metric": "loss", "epoch": -1}]},
        {"row": {"id": "not-a-uuid"}},
        {"health": {"verdict": "fine", "flags": []}},
        {"diagnoses": [{"problem": "dead_units", "active": True}]},
        {"status": {"status": "running", "surprise": 1}},
    ],
)
def test_it_refuses_a_record_of_the_wrong_shape(record: dict) -> None:
    with pytest.raises(ValidationError):
        LiveUpdate.model_validate({"kind": "status", "simulation_id": str(SIM), **record})
