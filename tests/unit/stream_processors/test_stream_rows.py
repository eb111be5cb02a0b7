"""Row building and dead-letter envelopes: what lands in the tables."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

from schemas.epochs import BatchPoint, EpochEvent
from schemas.status import EarlyStop, StatusEvent
from schemas.tensors import TensorHeader, TensorStats
from store import projection
from stream_processors import deadletter, rows
from stream_processors.projection import is_lifecycle as lifecycle_event

pytestmark = pytest.mark.unit


def test_it_builds_one_epoch_row_per_metric_point() -> None:
    sid = uuid.uuid4()
    event = EpochEvent(
        simulation_id=sid,
        epoch=2,
        total_epochs=5,
        metrics={"loss": 0.5, "acc": None, "bad": float("nan")},
        learning_rate=0.01,
        batches=[BatchPoint(step=3, metrics={"loss": 0.7})],
    )
    got = {(r[2], r[3]) for r in rows.epoch_rows([event])}
    assert got == {("loss", 0.5), ("learning_rate", 0.01)}
    assert rows.batch_rows([event]) == [(sid, 2, 3, "loss", 0.7, event.at)]


def test_it_keeps_tensor_stats_and_drops_payload_of_stats_only_messages() -> None:
    header = TensorHeader(
        simulation_id=uuid.uuid4(),
        epoch=1,
        layer_index=0,
        layer_name="d",
        kind="kernel",
        chunks=0,
        stats=TensorStats(mean=1.0, hist_counts=[2]),
    )
    row = dict(zip(rows.TENSOR.columns, rows.tensor_row(header, b""), strict=True))
    assert row["data"] is None
    assert row["stats"].obj == {
        "mean": 1.0,
        "hist_counts": [2],
        "hist_edges": [],
        "flags": [],
        "nonfinite": 0,
    }


def test_it_wraps_undecodable_messages_with_reason_and_original_bytes() -> None:
    sid = uuid.uuid4()
    doc = json.loads(deadletter.envelope("nnt.epochs", 1, 7, str(sid).encode(), b"\xffjunk", "bad"))
    assert doc["simulation_id"] == str(sid) and doc["reason"] == "bad"
    assert base64.b64decode(doc["value_b64"]) == b"\xffjunk"
    assert deadletter.simulation_hint(
        None, json.dumps({"simulation_id": str(sid)}).encode()
    ) == str(sid)
    assert deadletter.simulation_hint(b"nope", b"nope") is None


def test_it_projects_lifecycle_events_only() -> None:
    sid = uuid.uuid4()
    failed = StatusEvent(simulation_id=sid, status="failed", message="boom")
    params = projection.params(failed)
    assert (
        params["terminal"] and params["finished_at"] == failed.at and params["started_at"] is None
    )
    assert params["default_name"] == f"simulation {str(sid)[:8]}"
    assert lifecycle_event(failed)
    assert not lifecycle_event(StatusEvent(simulation_id=sid, status="accepted"))
    assert not lifecycle_event(StatusEvent(status="running"))


def test_it_stores_the_final_test_metrics_of_a_run_that_ended_by_training() -> None:
    sid = uuid.uuid4()
    metrics = {"accuracy": 0.913245678, "loss": 0.28714}
    finished = StatusEvent(simulation_id=sid, status="finished", metrics=metrics)
    assert projection.params(finished)["test_metrics"].obj == metrics
    no_test_set = StatusEvent(simulation_id=sid, status="finished", message="no test set")
    assert projection.params(no_test_set)["test_metrics"].obj == {}
    note = EarlyStop(
        problem="divergence", title="Diverging loss", summary="loss grew", epoch=4,
        total_epochs=10, saved_epochs=6,
    )  # fmt: skip
    early = StatusEvent(
        simulation_id=sid, status="stopped", epoch=4, metrics={"accuracy": 0.1}, early_stop=note
    )
    assert projection.params(early)["test_metrics"].obj == {"accuracy": 0.1}
    assert "test_metrics" not in projection.params(early)["early_stop"].obj  # one place
    # the orchestrator's plain stop keeps the row's (None: COALESCE), a resume clears them
    for status in ("stopped", "failed", "running", "queued"):
        assert (
            projection.params(StatusEvent(simulation_id=sid, status=status))["test_metrics"] is None
        )


def test_it_stores_the_one_line_as_message_and_the_full_text_as_error() -> None:
    sid = uuid.uuid4()
    trainer = StatusEvent(
        simulation_id=sid,
        status="failed",
        message="epoch 3, layer 'tokens': input value 16 is not a valid index in [0, 16)",
        detail="Traceback (most recent call last):\n  ...\nInvalidArgumentError: indices[3,7] = 16",
    )
    params = projection.params(trainer)
    assert params["message"] == trainer.message and params["error"] == trainer.detail
    # orchestrator failures are one line already: the line is the whole error
    killed = StatusEvent(simulation_id=sid, status="failed", message="trainer process killed")
    assert projection.params(killed)["error"] == "trainer process killed"
    running = StatusEvent(simulation_id=sid, status="running", message="m", detail="ignored")
    assert projection.params(running)["error"] == ""
