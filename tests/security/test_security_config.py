"""Hostile configurations: refused at submission (schemas) or, for Keras options, by the trainer.

Schema cases validate the appendix-A configuration exactly as the web and orchestrator do and
expect the error to name the field; trainer cases build the optimizer, loss or metrics.
"""

from __future__ import annotations

import json
import pickle
import re
import resource
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from schemas import topics
from schemas.experiment import (
    KERAS_LOSSES,
    KERAS_METRICS,
    KERAS_OPTIMIZERS,
    ExperimentConfig,
    LossSpec,
    MetricSpec,
    OptimizerSpec,
    error_fields,
)
from schemas.run import RUN_SPEC_FILE
from schemas.status import StatusEvent
from trainer import compiling
from trainer.demo import demo_run_spec
from trainer.errors import CompileError, DatasetError
from trainer.publisher import MemoryPublisher
from trainer.runner import run
from trainer.shaping import fold_indices

BASE = {"dataset_train": "stored:train"}
OPTIMIZER = [{"optimizer": "Adam"}]

# (id, configuration overrides, field that must be named, regex of its message)
CASES: list[tuple[str, dict[str, Any], str, str]] = [
    ("batch-size-zero", {"batch_size": 0}, "batch_size", "greater than or equal to 1"),
    ("batch-size-negative", {"batch_size": -32}, "batch_size", "greater than or equal to 1"),
    ("batch-size-huge", {"batch_size": 10**12}, "batch_size", "less than or equal to 1000000"),
    ("batch-size-string", {"batch_size": "lots"}, "batch_size", "valid integer"),
    ("total-epochs-zero", {"total_epochs": 0}, "total_epochs", "greater than or equal to 1"),
    ("total-epochs-huge", {"total_epochs": 10**9}, "total_epochs", "less than or equal to"),
    ("epoch-period-zero", {"epoch_period": 0}, "epoch_period", "greater than or equal to 1"),
    (
        "epoch-period-over-total",
        {"epoch_period": 20, "total_epochs": 10},
        "__all__",
        "epoch_period must not exceed total_epochs",
    ),
    ("learning-rate-zero", {"learning_rates": [0]}, "learning_rates", r"> 0 and <= 10, got \[0"),
    ("learning-rate-negative", {"learning_rates": [-0.1]}, "learning_rates", r"got \[-0\.1\]"),
    ("learning-rate-nan", {"learning_rates": ["nan"]}, "learning_rates", r"got \[nan\]"),
    ("learning-rate-inf", {"learning_rates": [float("inf")]}, "learning_rates", r"got \[inf\]"),
    ("learning-rate-huge", {"learning_rates": [1e6]}, "learning_rates", r"<= 10"),
    ("learning-rate-text", {"learning_rates": ["fast"]}, "learning_rates.0", "valid number"),
    ("k-fold-zero", {"k-fold_validation": 0}, "k-fold_validation", "greater than or equal"),
    ("k-fold-thousand", {"k-fold_validation": 1000}, "k-fold_validation", "less than or equal"),
    (
        "validation-split-over-one",
        {"validation_split": 1.5},
        "validation_split",
        "less than 1",
    ),
    (
        "validation-split-nan",
        {"validation_split": "nan"},
        "validation_split",
        "greater than 0|less than 1",
    ),
    (
        "unknown-optimizer",
        {"optimizers": [{"optimizer": "Adamm"}]},
        "optimizers.0.optimizer",
        r"unknown optimizer 'Adamm'; allowed: Adadelta, .*Adam, .*SGD",
    ),
    (
        "optimizer-is-a-python-path",
        {"optimizers": [{"optimizer": "os.system"}]},
        "optimizers.0.optimizer",
        r"unknown optimizer 'os\.system'; allowed:",
    ),
    (
        "unknown-loss",
        {"loss_functions": [{"loss_function": "EvilLoss"}]},
        "loss_functions.0.loss_function",
        r"unknown loss function 'EvilLoss'; allowed: .*SparseCategoricalCrossentropy",
    ),
    (
        "unknown-metric",
        {"extra-metrics": [{"metric": "__import__"}]},
        "extra-metrics.0.metric",
        r"unknown metric '__import__'; allowed: AUC",
    ),
    (
        "grid-explosion",
        {
            "optimizers": [{"optimizer": "Adam"}] * 50,
            "loss_functions": [{"loss_function": "Huber"}] * 50,
            "learning_rates": [0.01] * 50,
        },
        "__all__",
        r"50 x 50 x 50 x 1 = 125000 simulations .* over the limit of 1000",
    ),
    (
        "grid-explosion-by-folds",
        {"learning_rates": [0.01] * 20, "k-fold_validation": 100},
        "__all__",
        r"1 x 1 x 20 x 100 = 2000 simulations",
    ),
    ("unknown-field", {"run_as_root": True}, "run_as_root", "Extra inputs are not permitted"),
    ("tag-too-long", {"tags": ["x" * 65]}, "tags", "at most 64 characters"),
]


@pytest.mark.parametrize(
    ("overrides", "field", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_it_refuses_hostile_configurations(
    overrides: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        ExperimentConfig.model_validate(BASE | overrides)
    errors = error_fields(caught.value)
    assert field in errors, errors
    assert re.search(message, errors[field]), errors


def test_it_accepts_the_names_the_trainer_accepts() -> None:
    config = ExperimentConfig.model_validate(
        BASE
        | {
            "optimizers": [{"optimizer": "rmsprop"}, {"optimizer": "SGD"}],
            "loss_functions": [{"loss_function": "sparse_categorical_crossentropy"}],
            "extra_metrics": [{"metric": "mse"}, {"metric": "KLDivergence"}],
        }
    )
    assert [o.optimizer for o in config.optimizers] == ["rmsprop", "SGD"]


@pytest.mark.parametrize(
    ("names", "resolve"),
    [
        (KERAS_OPTIMIZERS, lambda n: compiling.build_optimizer(OptimizerSpec(optimizer=n), 0.01)),
        (KERAS_LOSSES, lambda n: compiling.loss_name(LossSpec(loss_function=n))),
        (
            KERAS_METRICS,
            lambda n: compiling.build_metrics(
                LossSpec(loss_function="mse"), [MetricSpec(metric=n)]
            ),
        ),
    ],
    ids=["optimizers", "losses", "metrics"],
)
def test_every_name_the_schema_allows_resolves_in_the_trainer(
    names: list[str], resolve: Any
) -> None:
    for name in names:
        try:
            resolve(name)
        except CompileError as exc:
            if "unknown" in str(exc):
                raise AssertionError(f"{name} passes the schema but not the trainer") from exc


TRAINER_CASES: list[tuple[str, Any, str]] = [
    (
        "optimizer-unexpected-key",
        lambda: compiling.build_optimizer(
            OptimizerSpec(optimizer="Adam", conf={"exec": "rm -rf /"}), 0.01, "optimizers"
        ),
        r"optimizers\.conf\.exec: unknown option 'exec' for Adam; allowed: amsgrad, beta_1",
    ),
    (
        "optimizer-option-wrong-type",
        lambda: compiling.build_optimizer(
            OptimizerSpec(optimizer="SGD", conf={"momentum": "high"}), 0.01, "optimizers"
        ),
        r"optimizers\.conf\.momentum: expected a number, got 'high'",
    ),
    (
        "optimizer-option-nan",
        lambda: compiling.build_optimizer(
            OptimizerSpec(optimizer="SGD", conf={"momentum": "nan"}), 0.01, "optimizers"
        ),
        r"optimizers\.conf\.momentum: expected a finite number",
    ),
    (
        "loss-option-object",
        lambda: compiling.build_loss(
            LossSpec(loss_function="Huber", conf={"reduction": {"class_name": "Lambda"}}),
            "loss_functions",
        ),
        r"loss_functions\.conf\.reduction: nested objects are not accepted",
    ),
    (
        "loss-option-bool-as-text",
        lambda: compiling.build_loss(
            LossSpec(loss_function="SparseCategoricalCrossentropy", conf={"from_logits": "yes"}),
            "loss_functions",
        ),
        r"loss_functions\.conf\.from_logits: expected true or false, got 'yes'",
    ),
    (
        "metric-huge-thresholds",
        lambda: compiling.build_metrics(
            LossSpec(loss_function="mse"),
            [MetricSpec(metric="AUC", conf={"num_thresholds": 10**9})],
        ),
        r"extra_metrics\[0\]\.conf\.num_thresholds: 1000000000 is too large",
    ),
    (
        "metric-huge-state",
        lambda: compiling.build_metrics(
            LossSpec(loss_function="mse"),
            [MetricSpec(metric="MeanIoU", conf={"num_classes": 1_000_000})],
        ),
        r"MeanIoU would keep 1000000000000 values, over the limit",
    ),
]


@pytest.mark.parametrize(
    ("build", "message"), [c[1:] for c in TRAINER_CASES], ids=[c[0] for c in TRAINER_CASES]
)
def test_the_trainer_refuses_hostile_keras_options(build: Any, message: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CompileError, match=message):
        build()
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 512 * 1024


def test_it_refuses_more_folds_than_samples() -> None:
    with pytest.raises(DatasetError, match="k_fold_validation: 10 folds need at least 10 samples"):
        fold_indices(np.arange(4), 10, 1, seed=0)


class Touch:
    """Unpickling this creates the file at `path`."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def _failed_run(tmp_path: Path, edit: Any) -> StatusEvent:
    run_dir, pub = demo_run_spec(tmp_path, total_epochs=1), MemoryPublisher()
    path = run_dir / RUN_SPEC_FILE
    spec = json.loads(path.read_text())
    edit(spec)
    path.write_text(json.dumps(spec))
    assert run(run_dir, pub) == 1
    last = StatusEvent.model_validate_json(pub.on(topics.STATUS)[-1])
    assert last.status == "failed"
    return last


def test_a_run_with_a_hostile_model_fails_with_its_reason(tmp_path: Path, canary: Path) -> None:
    def evil(spec: dict[str, Any]) -> None:
        spec["model"]["config"]["layers"][1]["module"] = "os"

    assert "module 'os' is not Keras" in _failed_run(tmp_path, evil).message


def test_a_run_with_a_pickle_dataset_fails_without_loading_it(tmp_path: Path, canary: Path) -> None:
    bad = tmp_path / "train.pkl"
    bad.write_bytes(pickle.dumps(Touch(str(canary))))

    def swap(spec: dict[str, Any]) -> None:
        spec["datasets"]["train"] = str(bad)

    assert "pickle files are disabled" in _failed_run(tmp_path, swap).message
