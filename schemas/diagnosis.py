"""What a run's internals say about how it trains: per-layer evidence and named diagnoses.

The trainer computes both every logged epoch (trainer/diagnosis) and sends them on the
epoch's `EpochEvent`; the stream workers keep each run's diagnoses (store/diagnoses.py) and
tell the pages when they change (`LiveUpdate(kind="diagnosis")`). docs/diagnosis.md lists
every problem, its rule, its threshold and where the threshold comes from.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from schemas.common import Epoch, Event

Problem = Literal[
    "nonfinite",  # NaN or inf in the loss, a metric or a weight
    "divergence",  # the loss grows far above its start, or keeps rising
    "exploding_gradients",  # gradients far larger than the weights they update
    "vanishing_gradients",  # early layers' gradients orders of magnitude below the last's
    "dead_network",  # a rectifier layer passes nothing: every unit is zero on every sample
    "dead_units",  # a large share of a rectifier layer's units never fire
    "saturation",  # sigmoid/tanh outputs pinned at their bounds
    "oscillation",  # the loss goes up and down from epoch to epoch instead of falling
    "slow_convergence",  # the loss barely moves: learning rate far too small, or a plateau
    "overfitting",  # validation loss rises while the training loss falls
    "output_mismatch",  # the loss expects probabilities the last layer does not give (or logits)
]
Severity = Literal["fatal", "warning"]
PROBLEMS: tuple[str, ...] = Problem.__args__  # type: ignore[attr-defined]
# The problems after which training cannot recover on its own: what early stopping acts on.
FATAL: frozenset[str] = frozenset({"nonfinite", "divergence", "dead_network"})

TITLES: dict[str, str] = {
    "nonfinite": "NaN in training",
    "divergence": "Diverging loss",
    "exploding_gradients": "Exploding gradients",
    "vanishing_gradients": "Vanishing gradients",
    "dead_network": "Dead network",
    "dead_units": "Dead ReLU units",
    "saturation": "Saturated activations",
    "oscillation": "Oscillating loss",
    "slow_convergence": "Slow convergence",
    "overfitting": "Overfitting",
    "output_mismatch": "Loss and output layer disagree",
}


class LayerEvidence(Event):
    """One layer's numbers at one logged epoch; None where they do not apply or are unknown."""

    layer_index: int = Field(ge=0)
    layer_name: str
    activation: str | None = Field(default=None, description="the layer's activation function")
    grad_norm: float | None = Field(default=None, description="L2 norm of the kernel gradient")
    grad_ratio: float | None = Field(
        default=None, description="grad_norm over the last trainable layer's grad_norm"
    )
    update_ratio: float | None = Field(
        default=None, description="||W - W_previous|| / ||W|| since the previous logged epoch"
    )
    weight_norm: float | None = None
    weight_growth: float | None = Field(
        default=None, description="weight_norm over the layer's weight_norm at the first epoch"
    )
    saturation: float | None = Field(
        default=None, description="share of sigmoid/tanh outputs within 1% of their bounds"
    )
    dead_fraction: float | None = Field(
        default=None, description="share of rectifier units zero on every probe sample"
    )
    alpha: float | None = Field(
        default=None, description="power-law exponent of the weight matrix's eigenvalues"
    )
    stable_rank: float | None = Field(default=None, description="||W||_F^2 / ||W||_2^2")


class TrendEvidence(Event):
    """The loss curve up to this epoch, reduced to what the rules read."""

    loss: float | None = None
    first_loss: float | None = None
    best_loss: float | None = None
    improvement: float | None = Field(
        default=None, description="1 - loss / first_loss: the share of the loss removed so far"
    )
    slope: float | None = Field(
        default=None, description="relative change of the loss per epoch, recent window"
    )
    rising: float | None = Field(
        default=None,
        description="share of the loss's movement over recent epochs that went up: 0 falling "
        "steadily, 1 rising steadily, around 0.5 swinging",
    )
    swing: float | None = Field(
        default=None,
        description="back-and-forth movement of the loss per epoch (total movement less the "
        "net change) relative to its level, recent window",
    )
    turns: int | None = Field(
        default=None, description="times the loss changed direction in the recent window"
    )
    val_loss: float | None = None
    gap: float | None = Field(
        default=None, description="(val_loss - loss) / loss: how far validation trails training"
    )
    val_rise: float | None = Field(
        default=None, description="val_loss over its best so far, minus 1"
    )
    nonfinite: list[str] = Field(
        default_factory=list, description="metrics or layers that hold NaN or inf"
    )


class Evidence(Event):
    """Everything the rules read at one logged epoch."""

    epoch: Epoch
    layers: list[LayerEvidence] = Field(default_factory=list)
    trend: TrendEvidence = Field(default_factory=TrendEvidence)
    output: dict[str, float | str | None] = Field(
        default_factory=dict,
        description="the last layer's output range and the loss's from_logits, when known",
    )


class Diagnosis(Event):
    """One named problem of a run: which layers, since when, why we think so, what to try."""

    problem: Problem
    severity: Severity
    title: str = Field(description="short name, e.g. 'Vanishing gradients'")
    summary: str = Field(
        description="one plain line: where, since when, the evidence in numbers",
        max_length=500,
    )
    fix: str = Field(description="what to try, in plain words", max_length=500)
    layers: list[str] = Field(default_factory=list)
    first_epoch: Epoch
    last_epoch: Epoch
    evidence: dict[str, float | str | None] = Field(default_factory=dict)
