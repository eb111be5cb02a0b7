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
from schemas.epochs import EpochEvent
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
    return [EpochEvent.model_validate_json(v).epoch for v in pub.on(topics.EPOCHS)]


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
        "digits-demo (O1) (L1) (LR1)",
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
    event = EpochEvent.model_validate_json(pub.on(topics.EPOCHS)[0])
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
