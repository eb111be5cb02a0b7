"""Optimizer, loss and metrics from the configuration, with the plan's learning rate applied."""

from __future__ import annotations

import difflib
import inspect
import logging
import math
from typing import Any, Literal

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
MAX_METRIC_STATE = 10_000_000  # values a metric may keep (AUC thresholds, IoU matrices)
MAX_OPTION_INT = 1_000_000  # AUC builds a Python list of num_thresholds floats up front
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


def check_options(cls: type, conf: dict[str, Any], field: str) -> None:
    """Each option is a parameter of the class and has the kind of value its default has."""
    params = {
        name: p
        for name, p in inspect.signature(cls).parameters.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }
    for key, value in conf.items():
        if key not in params:
            raise CompileError(f"{field}.conf.{key}: {unknown_option(cls.__name__, key, params)}")
        if isinstance(value, dict):
            raise CompileError(
                f"{field}.conf.{key}: nested objects are not accepted as options; "
                "give a number, boolean, string or list"
            )
        _check_kind(params[key].default, value, f"{field}.conf.{key}")


def unknown_option(owner: str, key: str, allowed: Any) -> str:
    """Why an option is refused, with the closest real name (or the list of them)."""
    names = sorted(allowed)
    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"allowed: {', '.join(names)}"
    return f"unknown option {key!r} for {owner}; {hint}"


def _check_kind(default: Any, value: Any, where: str) -> None:
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise CompileError(f"{where}: expected true or false, got {value!r}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CompileError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise CompileError(f"{where}: expected a finite number, got {value!r}")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_OPTION_INT:
        raise CompileError(f"{where}: {value} is too large (limit {MAX_OPTION_INT})")


def _bounded_metric(cls: type, conf: dict[str, Any], field: str) -> Any:
    """Build a metric, refusing one whose state would be huge (counted without allocating)."""
    from trainer.model import dry_run

    with dry_run():
        state = sum(math.prod(v.shape) for v in cls(**conf).variables)
    if state > MAX_METRIC_STATE:
        raise CompileError(
            f"{field}.conf: {cls.__name__} would keep {state} values, over the limit of "
            f"{MAX_METRIC_STATE}; use smaller options (e.g. fewer thresholds or classes)"
        )
    return cls(**conf)


def build_optimizer(spec: OptimizerSpec, learning_rate: float, field: str = "optimizer") -> Any:
    """The optimizer with the plan's learning rate, overriding any rate in its options."""
    table = _classes(keras.optimizers, keras.optimizers.Optimizer, NOT_OPTIMIZERS)
    name = _resolve(spec.optimizer, table, field, "'Adam', 'SGD' or 'RMSprop'")
    conf = {k: v for k, v in spec.conf.items() if k not in ("learning_rate", "lr")}
    check_options(getattr(keras.optimizers, name), conf, field)
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
    check_options(getattr(keras.losses, name), spec.conf, field)
    try:
        return getattr(keras.losses, name)(**spec.conf)
    except (TypeError, ValueError) as exc:
        raise CompileError(f"{field}.conf: invalid option for {name}: {exc}") from exc


def build_metrics(loss: LossSpec, extra: list[MetricSpec], classes: int | None = None) -> list[Any]:
    """Accuracy where the loss is a classification loss, then the configured extra metrics.

    With `classes` (the model's output units) an extra metric that needs the other label
    form than the loss's is adapted (see `adapt_metric`); `metrics_and_notes` also says what.
    """
    return metrics_and_notes(loss, extra, classes)[0]


def metrics_and_notes(
    loss: LossSpec, extra: list[MetricSpec], classes: int | None
) -> tuple[list[Any], list[str]]:
    """The metrics of `build_metrics`, and sentences for the user: which extra metrics see
    adapted labels, and why."""
    metrics: list[Any] = []
    notes: list[str] = []
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
        check_options(getattr(keras.metrics, metric), spec.conf, f"extra_metrics[{i}]")
        try:
            built = _bounded_metric(getattr(keras.metrics, metric), spec.conf, field)
        except (TypeError, ValueError) as exc:
            raise CompileError(
                f"extra_metrics[{i}].conf: invalid option for {metric}: {exc}"
            ) from exc
        adapted, note = adapt_metric(built, name, bool(loss.conf.get("from_logits")), classes)
        metrics.append(adapted)
        if note:
            notes.append(f"extra_metrics[{i}] ({metric}): {note}")
    return metrics, notes


def label_form(metric: keras.metrics.Metric) -> Literal["sparse", "dense", "own"]:
    """Which labels a metric compares: class indices, one value per output, or its option."""
    cls = type(metric)
    if "sparse_y_true" in inspect.signature(cls).parameters:
        return "own"  # IoU family: the user says which form with its options
    return "sparse" if cls.__name__.startswith("Sparse") else "dense"


def adapt_metric(
    metric: keras.metrics.Metric, loss: str, from_logits: bool, classes: int | None
) -> tuple[keras.metrics.Metric, str]:
    """Wrap a metric whose label form differs from the loss's, where the meaning is clear.

    Sparse labels (class indices) with a metric that compares one value per output are
    one-hot encoded for it, and logits turned into probabilities; one-hot labels with a
    Sparse* metric become class indices. Anything else is left to fail at pre-flight.
    """
    form = label_form(metric)
    if classes is None or classes < 2 or form == "own":
        return metric, ""
    if loss in SPARSE_LOSSES and form == "dense":
        how = "labels are class indices, so they are one-hot encoded for it"
        if from_logits:
            how += " and the logits turned into probabilities (softmax)"
        return LabelAdapter(metric, "one_hot", classes, from_logits), how
    if loss in ONE_HOT_LOSSES and form == "sparse":
        return LabelAdapter(metric, "argmax", classes, False), (
            "labels are one-hot, so it gets their class indices"
        )
    return metric, ""


class LabelAdapter(keras.metrics.Metric):
    """A metric fed labels in the form it needs (one-hot or class index), under its own name."""

    def __init__(self, inner: keras.metrics.Metric, mode: str, classes: int, softmax: bool) -> None:
        super().__init__(name=inner.name, dtype=inner.dtype)
        self.inner, self.mode, self.classes, self.softmax = inner, mode, classes, softmax

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        """Convert the labels (and logits), then update the wrapped metric."""
        ops = keras.ops
        if self.mode == "one_hot":
            index = ops.cast(ops.reshape(y_true, (-1,)), "int32")
            y_true = ops.one_hot(index, self.classes)
            if self.softmax:
                y_pred = ops.softmax(y_pred, axis=-1)
        else:
            y_true = ops.argmax(y_true, axis=-1)
        self.inner.update_state(y_true, y_pred, sample_weight=sample_weight)

    def result(self) -> Any:
        """The wrapped metric's value."""
        return self.inner.result()

    def reset_state(self) -> None:
        """Reset the wrapped metric."""
        self.inner.reset_state()
