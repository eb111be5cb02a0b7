"""Optimizer, loss and metrics follow the configuration: the learning rate is really applied."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from schemas.experiment import ExperimentConfig, LossSpec, MetricSpec, OptimizerSpec
from tests.unit.trainer.tiny import tiny_data
from trainer.compiling import build_loss, build_metrics, build_optimizer
from trainer.errors import CompileError

pytestmark = pytest.mark.unit


def losses_with(rate: float) -> list[float]:
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((4, 4)), keras.layers.Flatten(), keras.layers.Dense(3)])
    model.compile(
        build_optimizer(OptimizerSpec(optimizer="SGD"), rate),
        build_loss(
            LossSpec(loss_function="SparseCategoricalCrossentropy", conf={"from_logits": True})
        ),
    )
    x, y = tiny_data()
    return model.fit(x, y, epochs=3, batch_size=32, shuffle=False, verbose=0).history["loss"]


def test_it_applies_the_learning_rate_of_the_plan() -> None:
    # The seed read learning rates but never gave them to the optimizer.
    slow, fast = losses_with(0.001), losses_with(0.5)
    assert slow[0] != pytest.approx(fast[0]) and slow[-1] > fast[-1]
    optimizer = build_optimizer(OptimizerSpec(optimizer="adam", conf={"learning_rate": 9}), 0.02)
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.02)


def test_it_types_option_strings_before_they_reach_keras() -> None:
    # The seed kept "0.01" and "true" as strings, silently misconfiguring optimizers and losses.
    config = ExperimentConfig.model_validate(
        {
            "dataset_train": "t",
            "optimizers": [{"optimizer": "SGD", "conf": {"momentum": "0.9", "nesterov": "true"}}],
            "loss_function": [
                {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": "true"}}
            ],
            "learning_rates": ["0.05"],
        }
    )
    optimizer = build_optimizer(config.optimizers[0], config.learning_rates[0])
    loss = build_loss(config.loss_functions[0])
    assert (optimizer.momentum, optimizer.nesterov, loss.get_config()["from_logits"]) == (
        0.9,
        True,
        True,
    )
    assert float(np.asarray(optimizer.learning_rate)) == pytest.approx(0.05)


def test_it_names_the_field_of_an_unknown_optimizer() -> None:
    # The schema refuses unknown names at submission; the trainer still checks run.json.
    spec = OptimizerSpec.model_construct(optimizer="Adamm", conf={})
    with pytest.raises(CompileError, match="optimizers: unknown 'Adamm'.*'Adam'"):
        build_optimizer(spec, 0.1, "optimizers")


def test_it_names_the_field_of_a_bad_option() -> None:
    with pytest.raises(
        CompileError,
        match="loss_function.conf.no_such: unknown option 'no_such' for Huber; allowed",
    ):
        build_loss(LossSpec(loss_function="Huber", conf={"no_such": 1}))


def test_it_suggests_the_option_a_typo_meant() -> None:
    with pytest.raises(CompileError) as caught:
        build_loss(LossSpec(loss_function="SparseCategoricalCrossentropy", conf={"from_logit": 1}))
    assert str(caught.value) == (
        "loss_function.conf.from_logit: unknown option 'from_logit' for "
        "SparseCategoricalCrossentropy; did you mean 'from_logits'?"
    )


def test_it_adds_accuracy_for_classification_and_the_extra_metrics() -> None:
    sparse = LossSpec(loss_function="SparseCategoricalCrossentropy")
    metrics = build_metrics(sparse, [MetricSpec(metric="KLDivergence")])
    assert metrics[0] == "accuracy" and isinstance(metrics[1], keras.metrics.KLDivergence)
    assert build_metrics(LossSpec(loss_function="MeanSquaredError"), []) == []
    logits = build_metrics(
        LossSpec(loss_function="BinaryCrossentropy", conf={"from_logits": True}), []
    )
    assert logits[0].get_config()["threshold"] == 0.0


def test_it_names_the_field_of_an_unknown_metric() -> None:
    with pytest.raises(CompileError, match=r"extra_metrics\[0\]\.metric: unknown 'Nope'"):
        build_metrics(
            LossSpec(loss_function="MeanSquaredError"),
            [MetricSpec.model_construct(metric="Nope", conf={})],
        )
