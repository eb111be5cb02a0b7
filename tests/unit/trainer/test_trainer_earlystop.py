"""Early stopping: the rule over logged epochs, and a run that ends `stopped` with its reason."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from schemas import topics
from schemas.diagnosis import TITLES, Diagnosis
from schemas.epochs import decode as decode_epoch
from schemas.experiment import EarlyStopSpec
from schemas.run import RUN_SPEC_FILE
from schemas.status import EARLY_STOP_FILE, StatusEvent
from trainer import checkpoints
from trainer.callback import TrackerCallback
from trainer.demo import demo_run_spec
from trainer.earlystop import EarlyStopper, message
from trainer.publisher import MemoryPublisher
from trainer.runner import finite, run

pytestmark = pytest.mark.unit


def diagnosis(problem: str, first: int = 1, last: int = 1) -> Diagnosis:
    severity = "fatal" if problem in ("nonfinite", "divergence", "dead_network") else "warning"
    return Diagnosis(
        problem=problem,  # type: ignore[arg-type]
        severity=severity,  # type: ignore[arg-type]
        title=TITLES[problem],
        summary=f"{problem} since epoch {first}",
        fix="lower the learning rate",
        first_epoch=first,
        last_epoch=last,
    )


class FakeTracker:
    """The two things the stopper reads of a TrackerCallback."""

    def __init__(self) -> None:
        self.logged, self.total_epochs = 0, 40
        self.diagnoses: list[Diagnosis] = []


def feed(stopper: EarlyStopper, tracker: FakeTracker, per_epoch: list[list[str]]) -> list[bool]:
    """Log one epoch per item with those problems active; whether training stopped after each."""
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.stop_training = False  # what fit() sets before the first epoch
    stopper.set_model(model)
    stopped = []
    for epoch, problems in enumerate(per_epoch, 1):
        tracker.logged = epoch
        tracker.diagnoses = [diagnosis(p, 1, epoch) for p in problems]
        stopper.on_epoch_end(epoch - 1)
        stopped.append(bool(model.stop_training))
    return stopped


def test_it_stops_at_patience_and_not_before() -> None:
    tracker = FakeTracker()
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=3))
    stopped = feed(stopper, tracker, [[], ["divergence"], ["divergence"], ["divergence"]])
    assert stopped == [False, False, False, True]
    assert stopper.reason is not None and stopper.reason.problem == "divergence"
    note = stopper.note(40)
    assert note is not None and (note.epoch, note.saved_epochs) == (4, 36)


def test_it_never_stops_on_a_problem_it_is_not_told_to_act_on() -> None:
    tracker = FakeTracker()
    spec = EarlyStopSpec(enabled=True, on=["nonfinite"], patience=1)
    stopper = EarlyStopper(tracker, spec)
    stopped = feed(stopper, tracker, [["divergence", "vanishing_gradients"]] * 5)
    assert stopped == [False] * 5 and stopper.note(40) is None


def test_it_starts_counting_again_after_an_epoch_without_the_problem() -> None:
    tracker = FakeTracker()
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=2))
    per_epoch = [["nonfinite"], [], ["nonfinite"], ["dead_network"], ["nonfinite"]]
    assert feed(stopper, tracker, per_epoch) == [False] * 5
    assert stopper.reason is None


def test_it_names_the_longest_held_problem_when_two_are_due() -> None:
    tracker = FakeTracker()
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=2))
    feed(
        stopper, tracker, [["divergence"], ["divergence", "nonfinite"], ["divergence", "nonfinite"]]
    )
    assert stopper.reason is not None and stopper.reason.problem == "divergence"
    assert stopper.epoch == 2


def test_it_counts_only_logged_epochs() -> None:
    tracker = FakeTracker()
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=2))
    stopper.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    tracker.diagnoses = [diagnosis("divergence")]
    tracker.logged = 2
    for epoch in range(4):  # epochs 1..4 end, only epoch 2 was logged (epoch_period 2)
        stopper.on_epoch_end(epoch)
    assert stopper.reason is None and stopper.streaks == {"divergence": 1}


def test_it_does_nothing_when_disabled_or_without_diagnoses() -> None:
    tracker = FakeTracker()
    assert feed(EarlyStopper(tracker, EarlyStopSpec()), tracker, [["nonfinite"]] * 3) == [False] * 3
    bare = type("OldTracker", (), {"logged": 0, "total_epochs": 5})()  # no `diagnoses`
    stopper = EarlyStopper(bare, EarlyStopSpec(enabled=True, patience=1))
    stopper.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    bare.logged = 1
    stopper.on_epoch_end(0)
    assert stopper.reason is None


def test_it_writes_the_reason_in_one_line() -> None:
    tracker = FakeTracker()
    stopper = EarlyStopper(tracker, EarlyStopSpec(enabled=True, patience=1))
    feed(stopper, tracker, [[]] * 5 + [["divergence"]])
    note = stopper.note(40)
    assert note is not None
    assert message(note) == (
        "stopped early after epoch 6 of 40: Diverging loss — divergence since epoch 1; "
        "saved 34 epochs"
    )


# The runner, with a tracker whose diagnoses say what the test wants -------------------------


def statuses(pub: MemoryPublisher) -> list[StatusEvent]:
    return [StatusEvent.model_validate_json(v) for v in pub.on(topics.STATUS)]


def epochs(pub: MemoryPublisher) -> list[int]:
    return [decode_epoch(v).epoch for v in pub.on(topics.EPOCHS)]


@pytest.fixture
def diverging_from(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Make the tracker diagnose divergence on every logged epoch from `epoch` on."""
    since = {"epoch": 1}
    report = TrackerCallback.report

    def diagnosed(self: TrackerCallback, epoch: int, *args: Any) -> None:
        report(self, epoch, *args)
        bad = epoch >= since["epoch"]
        self.diagnoses = [diagnosis("divergence", since["epoch"], epoch)] if bad else []

    monkeypatch.setattr(TrackerCallback, "report", diagnosed)
    return since


def early_run(tmp_path: Path, total: int, **early_stop: Any) -> Path:
    run_dir = demo_run_spec(tmp_path, total_epochs=total)
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    spec["config"]["early_stop"] = {"enabled": True, **early_stop}
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    return run_dir


def test_a_run_ends_stopped_with_its_reason_and_keeps_its_epochs(
    tmp_path: Path, diverging_from: dict[str, int]
) -> None:
    diverging_from["epoch"] = 2
    run_dir, pub = early_run(tmp_path, total=10, patience=2), MemoryPublisher()
    assert run(run_dir, pub) == 0
    last = statuses(pub)[-1]
    assert (last.status, last.epoch, last.total_epochs) == ("stopped", 3, 10)
    assert last.message == (
        "stopped early after epoch 3 of 10: Diverging loss — divergence since epoch 2; "
        "saved 7 epochs"
    )
    assert last.early_stop is not None and last.early_stop.problem == "divergence"
    assert last.early_stop.saved_epochs == 7
    assert last.metrics and "accuracy" in last.metrics  # finite weights: the test set is scored
    assert "finished" not in [s.status for s in statuses(pub)]
    assert epochs(pub) == [1, 2, 3]
    assert checkpoints.latest_epoch(run_dir) == 3
    kept = StatusEvent.model_validate_json((run_dir / EARLY_STOP_FILE).read_text())
    assert kept.early_stop == last.early_stop


def test_a_resumed_early_stopped_run_trains_on_and_the_rule_applies_again(
    tmp_path: Path, diverging_from: dict[str, int]
) -> None:
    run_dir = early_run(tmp_path, total=10, patience=2)
    assert run(run_dir, MemoryPublisher()) == 0
    assert checkpoints.latest_epoch(run_dir) == 2
    pub = MemoryPublisher()
    assert run(run_dir, pub) == 0  # what the orchestrator does on `resume`
    seen = statuses(pub)
    assert (seen[0].status, seen[0].epoch) == ("running", 2)
    assert epochs(pub) == [3, 4]
    assert (seen[-1].status, seen[-1].epoch) == ("stopped", 4)
    assert seen[-1].early_stop is not None and seen[-1].early_stop.saved_epochs == 6


def test_a_resumed_run_that_recovers_finishes_and_leaves_no_stop_behind(
    tmp_path: Path, diverging_from: dict[str, int]
) -> None:
    run_dir = early_run(tmp_path, total=4, patience=1)
    assert run(run_dir, MemoryPublisher()) == 0
    assert (run_dir / EARLY_STOP_FILE).is_file()
    diverging_from["epoch"] = 99
    pub = MemoryPublisher()
    assert run(run_dir, pub) == 0
    assert statuses(pub)[-1].status == "finished" and epochs(pub) == [2, 3, 4]
    assert not (run_dir / EARLY_STOP_FILE).exists()


def test_a_run_without_early_stop_trains_every_epoch(
    tmp_path: Path, diverging_from: dict[str, int]
) -> None:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=3), MemoryPublisher()
    assert run(run_dir, pub) == 0
    assert statuses(pub)[-1].status == "finished" and epochs(pub) == [1, 2, 3]


def test_it_tells_finite_weights_from_nan_ones() -> None:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    assert finite(model)
    kernel, bias = model.get_weights()
    model.set_weights([np.full_like(kernel, np.nan), bias])
    assert not finite(model) and not finite(None)
