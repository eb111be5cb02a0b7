"""`python -m trainer RUN_DIR` end to end with an in-memory publisher: statuses, stop, resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import keras
import numpy as np
import pytest

from schemas import topics
from schemas.epochs import decode as decode_epoch
from schemas.run import RUN_SPEC_FILE
from schemas.status import StatusEvent
from trainer.__main__ import main
from trainer.demo import demo_run_spec, write_demo
from trainer.publisher import MemoryPublisher
from trainer.runner import Run, read_spec, run

pytestmark = pytest.mark.unit


def statuses(pub: MemoryPublisher) -> list[StatusEvent]:
    return [StatusEvent.model_validate_json(v) for v in pub.on(topics.STATUS)]


def epochs(pub: MemoryPublisher) -> list[int]:
    return [decode_epoch(v).epoch for v in pub.on(topics.EPOCHS)]


def edit_spec(run_dir: Path, **config: object) -> None:
    path = run_dir / RUN_SPEC_FILE
    spec = json.loads(path.read_text())
    spec["config"].update(config)
    path.write_text(json.dumps(spec))


def test_it_writes_the_digits_demo(tmp_path: Path) -> None:
    config, model, paths = write_demo(tmp_path)
    assert (config["name"], config["tags"], config["total_epochs"]) == ("digits-demo", ["demo"], 30)
    with np.load(paths["train"]) as data:
        x, y = data["x_train"], data["y_train"]
    assert x.shape[1:] == (8, 8) and x.dtype == np.float32 and x.min() >= 0 and x.max() <= 1
    assert set(y.tolist()) == set(range(10))
    assert model["config"]["layers"][0]["config"]["batch_shape"] == [None, 8, 8]


def test_it_trains_the_demo_and_reports_running_epochs_and_finished(tmp_path: Path) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=3), MemoryPublisher()
    assert run(run_dir, pub) == 0
    seen = statuses(pub)
    assert [(s.status, s.epoch) for s in seen] == [
        ("running", 0),
        ("running", 1),
        ("running", 2),
        ("running", 3),
        ("finished", 3),
    ]
    assert (seen[0].name, seen[0].tags, seen[0].total_epochs) == (
        "digits-demo",
        ["demo"],
        3,
    )
    assert seen[-1].message.startswith("test: ") and "accuracy=" in seen[-1].message
    assert epochs(pub) == [1, 2, 3]
    assert (run_dir / "checkpoints" / "latest.json").is_file()


def test_it_publishes_failed_with_the_reason_and_exits_1(tmp_path: Path) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=2), MemoryPublisher()
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    spec["model"]["config"]["layers"][-1]["config"]["units"] = 5  # digits have labels 0..9
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    assert run(run_dir, pub) == 1
    last = statuses(pub)[-1]
    assert last.status == "failed" and "dataset_train: label 9 is outside 0..4" in last.message


class SigtermDuringEpoch(keras.callbacks.Callback):
    """Sends this process a real SIGTERM in the middle of epoch `epoch` (1-based)."""

    def __init__(self, epoch: int) -> None:
        super().__init__()
        self.epoch, self.current = epoch, 0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.current = epoch + 1

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.current == self.epoch and batch == 3:
            os.kill(os.getpid(), signal.SIGTERM)


def test_it_stops_on_sigterm_and_resumes_without_losing_or_repeating_epochs(tmp_path: Path) -> None:
    run_dir, first = demo_run_spec(tmp_path, total_epochs=5), MemoryPublisher()
    before = signal.getsignal(signal.SIGTERM)
    assert Run(read_spec(run_dir), run_dir, first, callbacks=[SigtermDuringEpoch(3)]).execute() == 0
    assert signal.getsignal(signal.SIGTERM) == before
    stopped = statuses(first)[-1]
    assert (stopped.status, stopped.epoch) == ("stopped", 2)
    second = MemoryPublisher()
    assert run(run_dir, second) == 0
    assert (statuses(second)[0].status, statuses(second)[0].epoch) == ("running", 2)
    assert epochs(first) + epochs(second) == [1, 2, 3, 4, 5]
    assert [(s.status, s.epoch) for s in statuses(second)][-1] == ("finished", 5)


def test_it_trains_one_fold_of_the_training_file(tmp_path: Path) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=1), MemoryPublisher()
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    spec["plan"].update(fold=2, folds=3)
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    assert run(run_dir, pub) == 0
    event = decode_epoch(pub.on(topics.EPOCHS)[0])
    assert event.samples_per_s is not None and "val_loss" in event.metrics


def test_it_refuses_a_plan_that_belongs_to_another_simulation(tmp_path: Path) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=1), MemoryPublisher()
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    spec["plan"]["simulation_id"] = "00000000-0000-0000-0000-000000000001"
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    assert run(run_dir, pub) == 1
    assert "plan.simulation_id" in statuses(pub)[-1].message


def test_it_exits_1_without_a_run_spec(tmp_path: Path) -> None:
    assert main([str(tmp_path)]) == 1


def test_it_reports_the_checkpointed_epoch_when_a_resumed_run_fails_before_training(
    tmp_path: Path,
) -> None:
    run_dir = demo_run_spec(tmp_path, total_epochs=4)
    stop_at_3 = [SigtermDuringEpoch(3)]
    assert Run(read_spec(run_dir), run_dir, MemoryPublisher(), callbacks=stop_at_3).execute() == 0
    Path(read_spec(run_dir).datasets.train).unlink()  # gone before the resume
    pub = MemoryPublisher()
    assert run(run_dir, pub) == 1
    assert [(s.status, s.epoch) for s in statuses(pub)] == [("running", 2), ("failed", 2)]
    assert "dataset_train: file digits_train.npz not found" in statuses(pub)[-1].message
    assert epochs(pub) == []


def test_it_refuses_unknown_collect_layers_before_training(tmp_path: Path) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=2), MemoryPublisher()
    edit_spec(run_dir, collect={"layers": ["hidden", "hiden"]})
    assert run(run_dir, pub) == 1
    failed = statuses(pub)[-1]
    assert (failed.status, failed.epoch) == ("failed", 0)
    assert failed.message == (
        "collect.layers: no layer named 'hiden' in the model; "
        "use names among: flatten, hidden, logits"
    )
    assert epochs(pub) == [] and not (run_dir / "checkpoints").exists()


class WeightsAtEpochEnd(keras.callbacks.Callback):
    """Remembers the model's weights at the end of every epoch (1-based)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: dict[int, list[np.ndarray]] = {}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.seen[epoch + 1] = [w.copy() for w in self.model.get_weights()]


def kernel_sent(pub: MemoryPublisher, epoch: int, layer: str) -> np.ndarray:
    from trainer.reporting import join_tensors

    tensors = join_tensors(pub.on(topics.TENSORS))
    found = [
        a
        for (e, _, kind, var), a in tensors.items()
        if (e, kind) == (epoch, "kernel") and var.endswith(f"{layer}/kernel")
    ]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize(("period", "published"), [(1, [1, 2, 3, 4, 5]), (2, [2, 3, 4, 5])])
def test_it_rewinds_a_stopped_epoch_so_resume_trains_and_publishes_each_epoch_once(
    tmp_path: Path, period: int, published: list[int]
) -> None:
    run_dir, first, watch = (
        demo_run_spec(tmp_path, total_epochs=5),
        MemoryPublisher(),
        WeightsAtEpochEnd(),
    )
    edit_spec(run_dir, epoch_period=period)
    # SIGTERM after batch 4 of epoch 4: epoch 3 is the last complete one.
    stopping = Run(read_spec(run_dir), run_dir, first, callbacks=[SigtermDuringEpoch(4), watch])
    assert stopping.execute() == 0
    stopped = statuses(first)[-1]
    assert (stopped.status, stopped.epoch) == ("stopped", 3)
    assert "resumes at epoch 4 from its first batch" in stopped.message
    pointer = json.loads((run_dir / "checkpoints" / "latest.json").read_text())
    assert pointer["epoch"] == 3
    with np.load(run_dir / "checkpoints" / pointer["path"] / "model.npz") as saved:
        kept = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    # The checkpoint is the state after epoch 3, not after epoch 3 plus four batches of epoch 4.
    assert all(np.array_equal(a, b) for a, b in zip(kept, watch.seen[3], strict=True))
    assert not np.array_equal(watch.seen[4][0], watch.seen[3][0])  # epoch 4 did move the weights
    # What was published for epoch 3 is that same state.
    np.testing.assert_array_equal(kernel_sent(first, 3, "hidden"), watch.seen[3][0])
    second = MemoryPublisher()
    assert run(run_dir, second) == 0
    assert epochs(first) + epochs(second) == published
    assert [(s.status, s.epoch) for s in statuses(second)][-1] == ("finished", 5)


IRIS_ARFF = """@RELATION iris
@ATTRIBUTE sepal NUMERIC
@ATTRIBUTE colour {red,green}
@ATTRIBUTE class {setosa,versicolor,virginica}
@DATA
5.1,green,virginica
4.9,red,setosa
6.0,red,versicolor
5.5,green,setosa
6.3,red,virginica
5.0,green,versicolor
"""


def test_it_writes_label_mappings_for_an_arff_nominal_class(tmp_path: Path) -> None:
    import uuid

    from schemas.experiment import ExperimentConfig, expand
    from schemas.run import DatasetPaths, RunSpec

    (tmp_path / "iris.arff").write_text(IRIS_ARFF)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(3, name="species")])
    config = ExperimentConfig(
        dataset_train="stored:iris", label_column="class", total_epochs=1, batch_size=2
    )
    plan = expand(uuid.uuid4(), config)[0]
    spec = RunSpec(
        simulation_id=plan.simulation_id,
        name=plan.name,
        config=config,
        plan=plan,
        model=json.loads(model.to_json()),
        datasets=DatasetPaths(train=str(tmp_path / "iris.arff")),
    )
    (tmp_path / RUN_SPEC_FILE).write_text(spec.model_dump_json())
    pub = MemoryPublisher()
    assert run(tmp_path, pub) == 0, statuses(pub)[-1].message
    assert json.loads((tmp_path / "label_mappings.json").read_text()) == {
        "colour": ["red", "green"],
        "class": ["setosa", "versicolor", "virginica"],
    }


def embedding_run(tmp_path: Path, bad_split: str, total_epochs: int = 2) -> Path:
    """The demo's run dir with 64 pixel ids per sample and an Embedding of 16 rows; one id of
    the last `bad_split` sample is 16, which only TensorFlow's gather (at fit time) refuses."""
    run_dir = demo_run_spec(tmp_path, total_epochs=total_epochs)
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    net = keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            keras.layers.Embedding(16, 4, name="intensity"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    spec["model"] = json.loads(net.to_json())
    rng = np.random.default_rng(0)
    for role, n in (("train", 300), ("val", 70), ("test", 70)):
        x = rng.integers(0, 16, (n, 64))
        if role == bad_split:
            x[-1, 7] = 16
        np.savez(tmp_path / f"ids_{role}.npz", **{f"x_{role}": x, f"y_{role}": x[:, 0] % 10})
        spec["datasets"][role] = str(tmp_path / f"ids_{role}.npz")
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    return run_dir


@pytest.mark.parametrize(
    ("bad_split", "where", "last_good"),
    [("val", "epoch 1 (validation)", 0), ("test", "test evaluation", 2)],
)
def test_it_reports_a_failure_in_one_line_with_the_traceback_as_detail(
    tmp_path: Path, bad_split: str, where: str, last_good: int
) -> None:
    pub = MemoryPublisher()
    assert run(embedding_run(tmp_path, bad_split), pub) == 1
    failed = statuses(pub)[-1]
    assert (failed.status, failed.epoch) == ("failed", last_good)
    assert failed.message == (
        f"{where}, layer 'intensity': input value 16 is not a valid index in [0, 16) "
        "— raise the layer's input_dim (vocabulary size) or fix the data"
    )
    assert failed.detail is not None and failed.detail.startswith("Traceback")
    assert "indices[5,7] = 16 is not in [0, 16)" in failed.detail and "GatherV2" in failed.detail
    assert epochs(pub) == list(range(1, last_good + 1))
