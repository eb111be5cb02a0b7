"""Optimizer, loss and metrics from the configuration, with the plan's learning rate applied."""

from __future__ import annotations

import logging
from typing import Any

import keras

from schemas.experiment import LossSpec, MetricSpec, OptimizerSpec
from trainer.errors import CompileError

log = logging.getLogger(__name__)

NOT_OPTIMIZERS = {"Optimizer", "LossScaleOptimizer", "MultiOptimizer", "OptimizerMap"}
SPARSE_LOSSES = {"SparseCategoricalCrossentropy"}
ONE_HOT_LOSSES = {
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
}
BINARY_LOSSES = {"BinaryCrossentropy", "BinaryFocalCrossentropy"}
LOSS_FUNCTIONS = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
    "binary_crossentropy": "BinaryCrossentropy",
    "mse": "MeanSquaredError",
    "mean_squared_error": "MeanSquaredError",
    "mae": "MeanAbsoluteError",
    "mean_absolute_error": "MeanAbsoluteError",
}


def _classes(module: Any, base: type, skip: set[str]) -> dict[str, str]:
    """Lower-case name -> class name of a Keras module's public classes."""
    return {
        n.lower(): n
        for n in dir(module)
        if not n.startswith("_")
        and n not in skip
        and isinstance(getattr(module, n), type)
        and issubclass(getattr(module, n), base)
    }


def _resolve(name: str, table: dict[str, str], field: str, examples: str) -> str:
    found = table.get(name.replace("_", "").lower()) or table.get(name.lower())
    if found is None:
        raise CompileError(f"{field}: unknown {name!r}; use a Keras class name such as {examples}")
    return found


def build_optimizer(spec: OptimizerSpec, learning_rate: float, field: str = "optimizer") -> Any:
    """The optimizer with the plan's learning rate, overriding any rate in its options."""
    table = _classes(keras.optimizers, keras.optimizers.Optimizer, NOT_OPTIMIZERS)
    name = _resolve(spec.optimizer, table, field, "'Adam', 'SGD' or 'RMSprop'")
    conf = {k: v for k, v in spec.conf.items() if k not in ("learning_rate", "lr")}
    try:
        return getattr(keras.optimizers, name)(learning_rate=learning_rate, **conf)
    except (TypeError, ValueError) as exc:
        raise CompileError(f"{field}.conf: invalid option for {name}: {exc}") from exc


def loss_name(spec: LossSpec, field: str = "loss_function") -> str:
    """Canonical Keras class name of the configured loss."""
    table = _classes(keras.losses, keras.losses.Loss, {"Loss"})
    mapped = LOSS_FUNCTIONS.get(spec.loss_function.lower(), spec.loss_function)
    return _resolve(mapped, table, field, "'SparseCategoricalCrossentropy' or 'MeanSquaredError'")


def build_loss(spec: LossSpec, field: str = "loss_function") -> keras.losses.Loss:
    """The loss object with its typed options."""
    name = loss_name(spec, field)
    try:
        return getattr(keras.losses, name)(**spec.conf)
    except (TypeError, ValueError) as exc:
        raise CompileError(f"{field}.conf: invalid option for {name}: {exc}") from exc


def build_metrics(loss: LossSpec, extra: list[MetricSpec]) -> list[Any]:
    """Accuracy where the loss is a classification loss, then the configured extra metrics."""
    metrics: list[Any] = []
    name = loss_name(loss)
    if name in SPARSE_LOSSES | ONE_HOT_LOSSES:
        metrics.append("accuracy")
    elif name in BINARY_LOSSES:
        threshold = 0.0 if loss.conf.get("from_logits") else 0.5  # logits cross zero, not 0.5
        metrics.append(keras.metrics.BinaryAccuracy(name="accuracy", threshold=threshold))
    table = _classes(keras.metrics, keras.metrics.Metric, {"Metric"})
    for i, spec in enumerate(extra):
        field = f"extra_metrics[{i}].metric"
        if spec.metric.lower() in ("accuracy", "acc") and metrics:
            continue
        if not spec.conf and spec.metric.lower() in ("accuracy", "acc", "mse", "mae"):
            metrics.append(spec.metric.lower())
            continue
        metric = _resolve(spec.metric, table, field, "'AUC', 'Precision' or 'KLDivergence'")
        try:
            metrics.append(getattr(keras.metrics, metric)(**spec.conf))
        except (TypeError, ValueError) as exc:
            raise CompileError(
                f"extra_metrics[{i}].conf: invalid option for {metric}: {exc}"
            ) from exc
    return metrics
