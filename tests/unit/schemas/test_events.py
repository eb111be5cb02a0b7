"""Every event survives a round trip through its codec; bad input is refused clearly."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest
from pydantic import ValidationError

from schemas import codecs, tensors, topics
from schemas.__main__ import documents
from schemas.commands import CreateCommand, LifecycleCommand
from schemas.epochs import BatchPoint, EpochEvent
from schemas.experiment import ExperimentConfig, error_fields, expand, grid_size
from schemas.live import LivePoint, LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent

SIM = uuid.uuid4()


@pytest.mark.parametrize(
    "event",
    [
        StatusEvent(simulation_id=SIM, status="running", epoch=3, total_epochs=10, message="ok"),
        EpochEvent(
            simulation_id=SIM,
            epoch=1,
            total_epochs=5,
            metrics={"loss": 0.5, "accuracy": 0.9},
            learning_rate=0.01,
            batches=[BatchPoint(step=1, metrics={"loss": 0.7})],
        ),
        ResourceSample(simulation_id=SIM, cpu_percent=50.0, memory_bytes=1024),
        LiveUpdate(
            kind="epochs", simulation_id=SIM, points=[LivePoint(epoch=1, values={"loss": 1.0})]
        ),
        LifecycleCommand(type="pause", simulation_id=SIM, issued_by="ana"),
    ],
)
def test_it_round_trips_json_events(event) -> None:
    assert codecs.loads(type(event), codecs.dumps(event)) == event


def test_it_round_trips_commands_by_type() -> None:
    create = CreateCommand(experiment_id=uuid.uuid4(), experiment={"dataset_train": "stored:x"})
    assert codecs.load_command(codecs.dumps(create)) == create
    pause = LifecycleCommand(type="pause", simulation_id=SIM)
    assert codecs.load_command(codecs.dumps(pause)) == pause


def test_it_accepts_a_command_written_by_hand_like_kcat() -> None:
    raw = json.dumps(
        {
            "type": "stop",
            "command_id": str(uuid.uuid4()),
            "simulation_id": str(SIM),
            "issued_by": "ops",
            "issued_at": "2026-11-24T10:00:00Z",
        }
    )
    assert codecs.load_command(raw).type == "stop"


def test_it_refuses_an_unknown_command_type() -> None:
    with pytest.raises(ValidationError):
        codecs.load_command(json.dumps({"type": "explode", "simulation_id": str(SIM)}))


def test_it_carries_nan_metrics_as_null() -> None:
    event = EpochEvent(simulation_id=SIM, epoch=1, total_epochs=1, metrics={"loss": float("nan")})
    assert json.loads(codecs.dumps(event))["metrics"] == {"loss": None}


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_it_round_trips_tensor_chunks(dtype: str) -> None:
    rng = np.random.default_rng(0)
    array = rng.standard_normal((300, 700)).astype(np.float32)
    payload = tensors.encode_array(array, dtype)
    chunks = tensors.split(payload, chunk_bytes=100_000)
    assert len(chunks) > 1
    messages = [
        tensors.pack(
            tensors.TensorHeader(
                simulation_id=SIM,
                epoch=2,
                layer_index=1,
                layer_name="dense",
                kind="kernel",
                dtype=dtype,
                shape=[300, 700],
                chunk=i,
                chunks=len(chunks),
            ),
            c,
        )
        for i, c in enumerate(chunks)
    ]
    assert max(len(m) for m in messages) < topics.MAX_MESSAGE_BYTES
    parts = [tensors.unpack(m) for m in reversed(messages)]  # in any order
    joined = tensors.join_chunks(((h.chunk, p) for h, p in parts), len(chunks))
    assert joined is not None
    decoded = tensors.decode_array(joined, dtype, [300, 700])
    expected = array.astype(dtype)
    assert decoded.tobytes() == expected.tobytes()


def test_it_joins_a_tensor_only_when_every_chunk_is_there() -> None:
    assert tensors.join_chunks([(1, b"cd"), (0, b"ab"), (2, b"e")], 3) == b"abcde"
    assert tensors.join_chunks([(0, b"ab"), (0, b"ab"), (1, b"c")], 2) == b"abc"  # replayed
    assert tensors.join_chunks([(0, b"ab"), (2, b"e")], 3) is None  # chunk 1 missing
    assert tensors.join_chunks([(0, b"ab"), (1, b"c"), (5, b"x")], 2) is None  # not this copy's
    assert tensors.join_chunks([(0, b"")], 0) is None  # statistics only: no values


def test_it_refuses_a_malformed_tensor_message() -> None:
    with pytest.raises(tensors.TensorCodecError):
        tensors.unpack(b"garbage")


def test_it_types_seed_option_strings_and_accepts_seed_keys() -> None:
    config = ExperimentConfig.model_validate(
        {
            "dataset_train": "stored:a",
            "learning_rates": ["0.01", 0.1],
            "optimizers": [{"optimizer": "SGD", "conf": {"momentum": "0.9", "nesterov": "true"}}],
            "loss_function": [
                {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": "true"}}
            ],
            "k-fold_validation": 3,
            "k-fold_tag": "kf",
            "extra-metrics": [{"metric": "KLDivergence"}],
        }
    )
    assert config.learning_rates == [0.01, 0.1]
    assert config.optimizers[0].conf == {"momentum": 0.9, "nesterov": True}
    assert config.loss_functions[0].conf == {"from_logits": True}
    assert grid_size(config) == 6
    plans = expand(uuid.uuid4(), config)
    assert len({p.simulation_id for p in plans}) == 6
    assert [p.fold for p in plans[:3]] == [1, 2, 3]
    assert "kf" in plans[0].tags and plans[0].name.endswith("lr 0.01 · fold 1")


def test_it_names_the_field_of_each_error() -> None:
    with pytest.raises(ValidationError) as info:
        ExperimentConfig.model_validate(
            {"dataset_train": "x", "batch_size": 0, "learning_rates": [-1]}
        )
    fields = error_fields(info.value)
    assert "batch_size" in fields and "learning_rates" in fields


def test_it_keeps_exported_json_schemas_current() -> None:
    from schemas.__main__ import OUT

    for name, doc in documents().items():
        on_disk = json.loads((OUT / name).read_text())
        assert on_disk == json.loads(json.dumps(doc)), f"run `make schemas`: {name} is stale"


def test_it_names_runs_after_what_differs_in_the_grid() -> None:
    base = {"name": "digits", "dataset_train": "stored:a"}
    one = ExperimentConfig.model_validate(base)
    assert [p.name for p in expand(uuid.uuid4(), one)] == ["digits"]
    grid = ExperimentConfig.model_validate(
        base
        | {
            "optimizers": [{"optimizer": "Adam"}, {"optimizer": "SGD"}],
            "learning_rates": [0.01, 0.001],
            "k_fold_validation": 2,
        }
    )
    names = [p.name for p in expand(uuid.uuid4(), grid)]
    assert names[:3] == ["digits · Adam · lr 0.01 · fold 1", "digits · Adam · lr 0.01 · fold 2",
                         "digits · Adam · lr 0.001 · fold 1"]  # fmt: skip
    assert len(set(names)) == 8
    same = ExperimentConfig.model_validate(
        base
        | {"optimizers": [{"optimizer": "Adam"}, {"optimizer": "Adam", "conf": {"beta_1": 0.8}}]}
    )
    assert [p.name for p in expand(uuid.uuid4(), same)] == ["digits · Adam #1", "digits · Adam #2"]


def test_a_finished_event_with_a_nan_test_metric_stays_readable() -> None:
    import uuid

    from schemas.status import StatusEvent

    event = StatusEvent(
        simulation_id=uuid.uuid4(),
        status="finished",
        message="test: accuracy=0.1000, loss=nan",
        metrics={"accuracy": 0.1, "loss": float("nan")},
    )
    back = StatusEvent.model_validate_json(event.model_dump_json())
    assert back.metrics == {"accuracy": 0.1} and back.message.endswith("loss=nan")
