"""The appendix-A experiment configuration and its expansion into simulations.

Pure and shared: the web validates uploads with it, the orchestrator expands `create`
commands with it, and both derive the same simulation ids (uuid5 of the experiment id).
"""

from __future__ import annotations

import itertools
import math
import uuid
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

OptionValue = bool | int | float | str | None | list[Any] | dict[str, Any]

# Keras 3 class names, as plain strings so that submission-time validation needs no Keras;
# matched like the trainer matches them (case and underscores ignored). A security test
# checks each one resolves in the trainer's Keras.
KERAS_OPTIMIZERS = [
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Ftrl",
    "Lamb",
    "Lion",
    "Muon",
    "Nadam",
    "RMSprop",
    "SGD",
    "ScheduleFreeAdamW",
]
KERAS_LOSSES = [
    "BinaryCrossentropy",
    "BinaryFocalCrossentropy",
    "CTC",
    "CategoricalCrossentropy",
    "CategoricalFocalCrossentropy",
    "CategoricalGeneralizedCrossEntropy",
    "CategoricalHinge",
    "Circle",
    "CosineSimilarity",
    "Dice",
    "Hinge",
    "Huber",
    "KLDivergence",
    "LogCosh",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "Poisson",
    "SparseCategoricalCrossentropy",
    "SquaredHinge",
    "Tversky",
    "mse",
    "mae",
]
KERAS_METRICS = [
    "AUC",
    "Accuracy",
    "BinaryAccuracy",
    "BinaryCrossentropy",
    "BinaryIoU",
    "CategoricalAccuracy",
    "CategoricalCrossentropy",
    "CategoricalHinge",
    "ConcordanceCorrelation",
    "CosineSimilarity",
    "F1Score",
    "FBetaScore",
    "FalseNegatives",
    "FalsePositives",
    "Hinge",
    "IoU",
    "KLDivergence",
    "LogCoshError",
    "Mean",
    "MeanAbsoluteError",
    "MeanAbsolutePercentageError",
    "MeanIoU",
    "MeanSquaredError",
    "MeanSquaredLogarithmicError",
    "OneHotIoU",
    "OneHotMeanIoU",
    "PearsonCorrelation",
    "Poisson",
    "Precision",
    "PrecisionAtRecall",
    "R2Score",
    "Recall",
    "RecallAtPrecision",
    "RootMeanSquaredError",
    "SensitivityAtSpecificity",
    "SparseCategoricalAccuracy",
    "SparseCategoricalCrossentropy",
    "SparseTopKCategoricalAccuracy",
    "SpecificityAtSensitivity",
    "SquaredHinge",
    "Sum",
    "TopKCategoricalAccuracy",
    "TrueNegatives",
    "TruePositives",
    "acc",
    "mse",
    "mae",
]
MAX_SIMULATIONS = 1000


def _known(name: str, allowed: list[str], what: str) -> str:
    """`name` if it is one of `allowed` (ignoring case and underscores), else a ValueError."""
    if name.replace("_", "").lower() in {a.lower() for a in allowed}:
        return name
    raise ValueError(f"unknown {what} {name[:64]!r}; allowed: {', '.join(allowed)}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


def _typed(value: Any) -> Any:
    """Turn option strings the seed stored ("0.01", "true") into real numbers and booleans.

    Lists and objects are typed item by item: `["0.5", "0.9"]` becomes `[0.5, 0.9]`.
    """
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "false"):
            return low == "true"
        if low in ("none", "null"):
            return None
        for cast in (int, float):
            try:
                return cast(value.strip())
            except ValueError:
                continue
    return value


class _Configurable(_Strict):
    conf: dict[str, OptionValue] = Field(default_factory=dict)

    @field_validator("conf", mode="before")
    @classmethod
    def _type_options(cls, value: Any) -> Any:
        if value is None:
            return {}
        if isinstance(value, dict):
            return {k: _typed(v) for k, v in value.items()}
        return value


class OptimizerSpec(_Configurable):
    """One optimizer of the grid: a Keras optimizer class name and its options."""

    optimizer: str = Field(min_length=1, max_length=64)

    @field_validator("optimizer")
    @classmethod
    def _known_name(cls, value: str) -> str:
        return _known(value, KERAS_OPTIMIZERS, "optimizer")


class LossSpec(_Configurable):
    """One loss function of the grid: a Keras loss class name and its options."""

    loss_function: str = Field(min_length=1, max_length=64)

    @field_validator("loss_function")
    @classmethod
    def _known_name(cls, value: str) -> str:
        return _known(value, KERAS_LOSSES, "loss function")


class MetricSpec(_Configurable):
    """One extra metric reported every logged epoch."""

    metric: str = Field(min_length=1, max_length=64)

    @field_validator("metric")
    @classmethod
    def _known_name(cls, value: str) -> str:
        return _known(value, KERAS_METRICS, "metric")


class CollectSpec(_Strict):
    """Which internals a run reports; default: everything, every logged epoch."""

    weights: bool = True
    biases: bool = True
    gradients: bool = True
    activations: bool = True
    layers: list[str] | None = Field(default=None, description="Layer names; null means all")
    full_tensor_period: int = Field(
        default=1, ge=1, description="Send full tensors every N-th logged epoch"
    )
    dtype: Literal["float32", "float16"] = "float32"
    probe_size: int = Field(default=64, ge=1, le=4096)
    diagnose: bool = Field(
        default=True,
        description="compute evidence and diagnoses every logged epoch (docs/diagnosis.md)",
    )


StopProblem = Literal["nonfinite", "divergence", "dead_network"]
STOP_PROBLEMS: tuple[StopProblem, ...] = ("nonfinite", "divergence", "dead_network")


class EarlyStopSpec(_Strict):
    """Opt-in: stop a run once a fatal diagnosis has held for `patience` logged epochs.

    The run keeps everything it recorded; its status becomes `stopped` with the reason, and
    the epochs it did not run are reported as compute saved.
    """

    enabled: bool = False
    on: list[StopProblem] = Field(
        default_factory=lambda: list(STOP_PROBLEMS),
        min_length=1,
        description="fatal diagnoses that stop a run (schemas/diagnosis.py)",
    )
    patience: int = Field(
        default=2, ge=1, le=1000, description="logged epochs in a row the diagnosis must hold"
    )


class ExperimentConfig(_Strict):
    """Appendix A of the seed report, validated: every error names its field."""

    name: str = Field(default="experiment", min_length=1, max_length=200)
    dataset_train: str = Field(min_length=1, description="URL or stored-file reference")
    dataset_test: str | None = None
    dataset_val: str | None = None
    batch_size: int = Field(default=32, ge=1, le=1_000_000)
    total_epochs: int = Field(default=10, ge=1, le=100_000)
    epoch_period: int = Field(default=1, ge=1)
    optimizers: list[OptimizerSpec] = Field(
        default_factory=lambda: [OptimizerSpec(optimizer="Adam")], min_length=1
    )
    loss_functions: list[LossSpec] = Field(
        default_factory=lambda: [LossSpec(loss_function="SparseCategoricalCrossentropy")],
        validation_alias=AliasChoices("loss_functions", "loss_function"),
        min_length=1,
    )
    learning_rates: list[float] = Field(default_factory=lambda: [0.001], min_length=1)
    k_fold_validation: int = Field(
        default=1,
        ge=1,
        le=100,
        validation_alias=AliasChoices("k_fold_validation", "k-fold_validation"),
    )
    k_fold_tag: str | None = Field(
        default=None, validation_alias=AliasChoices("k_fold_tag", "k-fold_tag"), max_length=64
    )
    extra_metrics: list[MetricSpec] = Field(
        default_factory=list, validation_alias=AliasChoices("extra_metrics", "extra-metrics")
    )
    tags: list[str] = Field(default_factory=list)
    train_feature_name: str | None = None
    train_label_name: str | None = None
    test_feature_name: str | None = None
    test_label_name: str | None = None
    val_feature_name: str | None = None
    val_label_name: str | None = None
    label_column: str | None = None
    validation_split: float | None = Field(default=None, gt=0, lt=1)
    collect: CollectSpec = Field(default_factory=CollectSpec)
    gpu: bool = Field(
        default=False, description="Run on a GPU; a host without one refuses with a clear message"
    )
    early_stop: EarlyStopSpec = Field(
        default_factory=EarlyStopSpec,
        description="stop runs with a fatal diagnosis early (off unless enabled)",
    )

    @field_validator("early_stop", mode="before")
    @classmethod
    def _early_stop_flag(cls, value: Any) -> Any:
        """`early_stop: true` turns it on with the defaults; false or null leaves it off."""
        if isinstance(value, bool) or value is None:
            return {"enabled": bool(value)}
        return value

    @field_validator("learning_rates", mode="before")
    @classmethod
    def _rates_are_numbers(cls, value: Any) -> Any:
        if isinstance(value, (int, float, str)):
            value = [value]
        return [_typed(v) for v in value] if isinstance(value, list) else value

    @field_validator("learning_rates")
    @classmethod
    def _rates_positive(cls, value: list[float]) -> list[float]:
        bad = [v for v in value if not 0 < v <= 10]
        if bad:
            raise ValueError(f"each learning rate must be > 0 and <= 10, got {bad}")
        return value

    @field_validator("validation_split")
    @classmethod
    def _split_or_file(cls, value: float | None, info: ValidationInfo) -> float | None:
        # The seed silently ignored the fraction when a validation file was also given.
        if value is not None and info.data.get("dataset_val"):
            raise ValueError(
                "validation_split cannot be combined with dataset_val: the validation file "
                "is used as it is; remove validation_split, or remove dataset_val to cut "
                "the validation set from dataset_train"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _clean_tags(cls, value: list[str]) -> list[str]:
        cleaned = [t.strip() for t in value if t.strip()]
        too_long = [t for t in cleaned if len(t) > 64]
        if too_long:
            raise ValueError(f"tags must be at most 64 characters: {too_long[0][:20]}...")
        return list(dict.fromkeys(cleaned))

    @model_validator(mode="after")
    def _period_within_epochs(self) -> ExperimentConfig:
        if self.epoch_period > self.total_epochs:
            raise ValueError("epoch_period must not exceed total_epochs")
        return self

    @model_validator(mode="after")
    def _grid_within_cap(self) -> ExperimentConfig:
        sizes = (
            len(self.optimizers),
            len(self.loss_functions),
            len(self.learning_rates),
            self.k_fold_validation,
        )
        if math.prod(sizes) > MAX_SIMULATIONS:
            raise ValueError(
                f"the grid makes {' x '.join(map(str, sizes))} = {math.prod(sizes)} "
                "simulations (optimizers x loss_functions x learning_rates x "
                f"k_fold_validation), over the limit of {MAX_SIMULATIONS}; split it into "
                "several experiments"
            )
        return self

    def all_tags(self) -> list[str]:
        """Experiment tags plus the K-fold tag when folds are used."""
        tags = list(self.tags)
        if self.k_fold_validation > 1 and self.k_fold_tag and self.k_fold_tag not in tags:
            tags.append(self.k_fold_tag)
        return tags


class SimulationPlan(_Strict):
    """One cell of the grid: what a single training run does."""

    simulation_id: uuid.UUID
    index: int
    name: str
    optimizer: OptimizerSpec
    loss: LossSpec
    learning_rate: float
    fold: int | None = None
    folds: int = 1
    tags: list[str]


def simulation_id(experiment_id: uuid.UUID, index: int) -> uuid.UUID:
    """Deterministic id of the index-th simulation of an experiment."""
    return uuid.uuid5(experiment_id, f"simulation-{index}")


NAME_SEPARATOR = " · "


def _distinct(labels: list[str]) -> list[str]:
    """Labels made unique: a repeated label gets its position (`Adam #2`)."""
    if len(set(labels)) == len(labels):
        return labels
    return [f"{label} #{i}" for i, label in enumerate(labels, 1)]


def _rate(rate: float) -> str:
    return f"lr {rate:g}"


def axis_labels(config: ExperimentConfig) -> tuple[list[str], list[str], list[str]]:
    """Short labels of each grid axis's values; an axis with one value gets no label."""

    def varying(labels: list[str]) -> list[str]:
        return _distinct(labels) if len(labels) > 1 else [""] * len(labels)

    return (
        varying([o.optimizer for o in config.optimizers]),
        varying([lo.loss_function for lo in config.loss_functions]),
        varying([_rate(r) for r in config.learning_rates]),
    )


def run_name(
    config: ExperimentConfig,
    labels: tuple[list[str], list[str], list[str]],
    position: tuple[int, int, int],
    fold: int | None,
) -> str:
    """A run's name after what differs in its grid: `digits · Adam · lr 0.01 · fold 2`."""
    parts = [axis[i - 1] for axis, i in zip(labels, position, strict=True)]
    if fold:
        parts.append(f"fold {fold}")
    return NAME_SEPARATOR.join([config.name, *[p for p in parts if p]])


def expand(experiment_id: uuid.UUID, config: ExperimentConfig) -> list[SimulationPlan]:
    """Optimizers x losses x learning rates, times K folds, each named after what differs."""
    plans: list[SimulationPlan] = []
    grid = itertools.product(
        enumerate(config.optimizers, 1),
        enumerate(config.loss_functions, 1),
        enumerate(config.learning_rates, 1),
    )
    folds = config.k_fold_validation
    labels = axis_labels(config)
    for (oi, opt), (li, loss), (ri, rate) in grid:
        for fold in range(1, folds + 1) if folds > 1 else [None]:
            index = len(plans)
            name = run_name(config, labels, (oi, li, ri), fold)
            plans.append(
                SimulationPlan(
                    simulation_id=simulation_id(experiment_id, index),
                    index=index,
                    name=name,
                    optimizer=opt,
                    loss=loss,
                    learning_rate=rate,
                    fold=fold,
                    folds=folds,
                    tags=config.all_tags(),
                )
            )
    return plans


def grid_size(config: ExperimentConfig) -> int:
    """How many simulations a configuration creates."""
    return (
        len(config.optimizers)
        * len(config.loss_functions)
        * len(config.learning_rates)
        * config.k_fold_validation
    )


def error_fields(exc: Exception) -> dict[str, str]:
    """Map a pydantic ValidationError to {"field.path": "message"} for forms, API and CLI."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return {"__all__": str(exc)}
    out: dict[str, str] = {}
    for err in errors():
        path = ".".join(str(p) for p in err.get("loc", ())) or "__all__"
        out[path] = err.get("msg", "invalid")
    return out
