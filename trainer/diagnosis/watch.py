"""The TrackerCallback's diagnostician: gathers a logged epoch's arrays, then evidence, then
diagnoses. A failure here is logged and costs only that epoch's diagnoses, never the run."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from schemas.diagnosis import Diagnosis, Evidence
from trainer.diagnosis import facts
from trainer.diagnosis.evidence import EvidenceTracker, LayerArrays, spectral_period
from trainer.diagnosis.rules import Context, Diagnoser

log = logging.getLogger(__name__)


class Watch:
    """Evidence and diagnoses of one run, fed layer by layer as the callback reads tensors."""

    def __init__(self, total_epochs: int = 0) -> None:
        self.tracker = EvidenceTracker()
        self.diagnoser = Diagnoser(Context(total_epochs=total_epochs))
        self._facts: dict[str, Any] | None = None
        self._activations: dict[str, str | None] = {}
        self._layers: dict[str, LayerArrays] = {}

    def epoch_end(self, logs: dict[str, float | None]) -> None:
        """Every completed epoch's metrics: the loss curve the trend rules read."""
        self.tracker.epoch_end(logs)

    def initial(self, name: str, kernel: np.ndarray) -> None:
        """A layer's kernel before training: the start of its growth and first update."""
        self.tracker.start(name, kernel)

    def _layer(self, index: int, name: str) -> LayerArrays:
        return self._layers.setdefault(name, LayerArrays(index, name, self._activations.get(name)))

    def kernel(self, index: int, name: str, array: np.ndarray) -> None:
        """A layer's kernel this epoch (the first, for layers with several)."""
        layer = self._layer(index, name)
        if layer.kernel is None:
            layer.kernel = array

    def gradient(self, name: str, array: np.ndarray) -> None:
        """The gradient of a layer's kernel on the probe batch."""
        layer = self._layers.get(name)
        if layer is not None and layer.gradient is None:
            layer.gradient = array

    def output(self, index: int, name: str, array: np.ndarray) -> None:
        """A layer's output on the probe batch."""
        self._layer(index, name).output = array

    def diagnose(
        self,
        model: Any,
        epoch: int,
        learning_rate: float | None,
        probe: tuple[np.ndarray, np.ndarray] | None,
        total_epochs: int,
    ) -> tuple[Evidence | None, list[Diagnosis] | None]:
        """This logged epoch's evidence and the problems active now; (None, None) if it
        could not be computed (logged with its traceback)."""
        try:
            if self._facts is None:
                x, y = probe if probe is not None else (None, None)
                self._facts = facts.output_facts(model, x, y)
                self._activations = facts.activations(model)
            ctx = self.diagnoser.context
            ctx.learning_rate, ctx.total_epochs, ctx.facts = (
                learning_rate,
                total_epochs,
                self._facts,
            )
            layers = sorted(self._layers.values(), key=lambda a: a.index)
            if self.tracker.logged == 0:  # the model's size sets how often spectra are fitted
                sizes = [a.kernel.size for a in layers if a.kernel is not None]
                self.tracker.spectral_every = spectral_period(sum(sizes))
            for layer in layers:
                layer.activation = self._activations.get(layer.name, layer.activation)
            evidence = self.tracker.evidence(epoch, layers, {**self._facts, **_range(layers)})
            return evidence, self.diagnoser.update(evidence)
        except Exception:  # diagnosing is advice: it must never end the training it watches
            log.exception("epoch %d: could not diagnose; training goes on", epoch)
            return None, None
        finally:
            self._layers = {}


def _range(layers: list[LayerArrays]) -> dict[str, float | None]:
    """The last layer's output range on the probe batch."""
    last = next((a.output for a in reversed(layers) if a.output is not None), None)
    if last is None or not last.size:
        return {}
    finite = last[np.isfinite(last)]
    if not finite.size:
        return {"output_min": None, "output_max": None}
    return {"output_min": float(finite.min()), "output_max": float(finite.max())}
