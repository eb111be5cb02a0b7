"""A logged epoch's arrays reduced to the numbers the rules read (schemas.diagnosis.Evidence).

`EvidenceTracker` keeps what a number needs from earlier epochs: every epoch's losses (the
trend), each layer's first weight norm (growth) and its previous kernel (the update ratio).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from schemas.diagnosis import Evidence, LayerEvidence, TrendEvidence
from trainer.diagnosis.spectral import spectral
from trainer.stats import flat_values, norm

RECTIFIERS = frozenset({"relu", "relu6"})
# Output bounds of the squashing activations: a unit within 1% of the range from a bound is
# saturated (its derivative is below ~4% of its peak for tanh, ~1% for sigmoid).
BOUNDS = {"sigmoid": (0.0, 1.0), "hard_sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}
NEAR_BOUND = 0.01
TREND_WINDOW = 8  # epochs the slope, rise and swing are read over
# The spectral fits cost about 0.1 s per million kernel values (float32, two cores): a model
# whose watched kernels hold more than this many values fits them every
# ceil(values / SPECTRAL_VALUES) logged epochs (a ResNet50, 23.5M: every 6th), the first
# logged epoch included; the other evidence is computed at every logged epoch.
SPECTRAL_VALUES = 4_000_000


def spectral_period(kernel_values: int) -> int:
    """Logged epochs between spectral fits for kernels holding `kernel_values` values."""
    return max(1, math.ceil(kernel_values / SPECTRAL_VALUES))


@dataclass
class LayerArrays:
    """One layer's arrays at a logged epoch: its kernel, the kernel's gradient on the probe
    batch and the layer's output on it (any may be missing)."""

    index: int
    name: str
    activation: str | None = None
    kernel: np.ndarray | None = None
    gradient: np.ndarray | None = None
    output: np.ndarray | None = None
    trainable: bool = True


def _finite(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def _norm(array: np.ndarray | None) -> float | None:
    if array is None or array.size == 0:
        return None
    return _finite(norm(flat_values(array)))


def _rms(array: np.ndarray | None) -> float | None:
    norm = _norm(array)
    return norm / math.sqrt(array.size) if norm is not None and array is not None else None


def saturation(activation: str | None, output: np.ndarray | None) -> float | None:
    """Share of a squashing layer's outputs within 1% of the range from its bounds."""
    if activation not in BOUNDS or output is None or output.size == 0:
        return None
    low, high = BOUNDS[activation]
    margin = (high - low) * NEAR_BOUND
    out = np.asarray(output, dtype=np.float64)
    return float(np.mean((out <= low + margin) | (out >= high - margin)))


def dead_fraction(activation: str | None, output: np.ndarray | None) -> float | None:
    """Share of a rectifier layer's units (last axis) that are zero on every probe sample."""
    if activation not in RECTIFIERS or output is None or output.ndim < 2 or not output.shape[-1]:
        return None
    units = np.asarray(output).reshape(-1, output.shape[-1])
    return float(np.mean(np.all(units == 0, axis=0)))


@dataclass
class EvidenceTracker:
    """Turns each logged epoch's arrays and every epoch's logs into Evidence."""

    spectral_every: int = 1  # logged epochs between spectral fits (they cost the most)
    history: list[dict[str, float | None]] = field(default_factory=list)
    first_norms: dict[str, float] = field(default_factory=dict)
    previous: dict[str, np.ndarray] = field(default_factory=dict)
    logged: int = 0

    def epoch_end(self, logs: dict[str, float | None]) -> None:
        """Remember one completed epoch's metrics (every epoch, logged or not)."""
        self.history.append(dict(logs))

    def start(self, name: str, kernel: np.ndarray) -> None:
        """A layer's kernel before training (its first one, for layers with several)."""
        if name not in self.previous:
            self.previous[name] = np.array(kernel, copy=True)
            self.first_norms[name] = _norm(kernel) or 0.0

    def evidence(
        self, epoch: int, layers: list[LayerArrays], output: dict[str, float | str | None]
    ) -> Evidence:
        """The evidence of this logged epoch."""
        self.logged += 1
        with_spectra = (self.logged - 1) % max(1, self.spectral_every) == 0
        out = [self._layer(a, with_spectra) for a in layers]
        _ratios(out, layers)
        trend = self.trend()
        trend.nonfinite += [
            f"{a.name} weights" for a in layers
            if a.kernel is not None and not np.all(np.isfinite(a.kernel))
        ]  # fmt: skip
        return Evidence(epoch=epoch, layers=out, trend=trend, output=output)

    def _layer(self, a: LayerArrays, with_spectra: bool) -> LayerEvidence:
        ev = LayerEvidence(layer_index=a.index, layer_name=a.name, activation=a.activation)
        ev.saturation = saturation(a.activation, a.output)
        ev.dead_fraction = dead_fraction(a.activation, a.output)
        ev.grad_norm = _norm(a.gradient)
        if a.kernel is None:
            return ev
        ev.weight_norm = _norm(a.kernel)
        first = self.first_norms.setdefault(a.name, ev.weight_norm or 0.0)
        if ev.weight_norm is not None and first > 0:
            ev.weight_growth = ev.weight_norm / first
        before = self.previous.get(a.name)
        if before is not None and before.shape == a.kernel.shape and ev.weight_norm:
            moved = norm(flat_values(a.kernel) - flat_values(before))
            ev.update_ratio = _finite(moved / ev.weight_norm)
        self.previous[a.name] = np.array(a.kernel, copy=True)
        if with_spectra:
            ev.alpha, ev.stable_rank = (_finite(v) for v in spectral(a.kernel))
        return ev

    def trend(self) -> TrendEvidence:
        """The loss curve so far reduced to level, improvement, slope, oscillation and gap."""
        losses = [h.get("loss") for h in self.history]
        t = TrendEvidence(
            nonfinite=sorted(
                {k for k, v in (self.history[-1] if self.history else {}).items()
                 if v is None or not math.isfinite(v)}
            )
        )  # fmt: skip
        finite = [v for v in losses if v is not None and math.isfinite(v)]
        if not finite:
            return t
        t.loss = _finite(losses[-1]) if losses[-1] is not None else None
        t.first_loss, t.best_loss = finite[0], min(finite)
        if t.loss is not None and t.first_loss:
            t.improvement = 1.0 - t.loss / t.first_loss
        recent = [v for v in losses[-TREND_WINDOW:] if v is not None and math.isfinite(v)]
        t.slope = _slope(recent)
        t.rising, t.swing, t.turns = _movement(recent)
        vals = [h.get("val_loss") for h in self.history]
        if vals and vals[-1] is not None and math.isfinite(vals[-1]):
            t.val_loss = vals[-1]
            if t.loss:
                t.gap = (t.val_loss - t.loss) / abs(t.loss)
            best_val = min(v for v in vals if v is not None and math.isfinite(v))
            if best_val > 0:
                t.val_rise = t.val_loss / best_val - 1.0
        return t


def _ratios(out: list[LayerEvidence], layers: list[LayerArrays]) -> None:
    """Each layer's gradient RMS over the last trainable layer's (sizes cancel out)."""
    rms = {a.name: _rms(a.gradient) for a in layers if a.gradient is not None}
    last = next((rms[a.name] for a in reversed(layers) if rms.get(a.name)), None)
    if not last:
        return
    for ev in out:
        value = rms.get(ev.layer_name)
        if value is not None:
            ev.grad_ratio = value / last


def _slope(values: list[float]) -> float | None:
    """Least-squares slope of the values per epoch, relative to their mean magnitude."""
    if len(values) < 3:
        return None
    y = np.asarray(values, dtype=np.float64)
    scale = float(np.mean(np.abs(y)))
    if scale == 0:
        return 0.0
    return _finite(float(np.polyfit(np.arange(y.size), y, 1)[0]) / scale)


def _movement(values: list[float]) -> tuple[float | None, float | None, int | None]:
    """(share of the movement that went up, back-and-forth movement per step relative to the
    level, direction changes): a steady fall is (0, 0, 0), a zig-zag (~0.5, large, many)."""
    if len(values) < 4:
        return None, None, None
    steps = np.diff(np.asarray(values, dtype=np.float64))
    moved = float(np.sum(np.abs(steps)))
    level = float(np.mean(np.abs(values)))
    if moved == 0 or level == 0:
        return 0.0, 0.0, 0
    signs = np.sign(steps[np.abs(steps) > 0.01 * level])  # a step under 1% is no direction
    turns = int(np.sum(signs[1:] != signs[:-1]))
    back_and_forth = (moved - abs(float(values[-1] - values[0]))) / steps.size / level
    return float(np.sum(steps[steps > 0]) / moved), back_and_forth, turns
