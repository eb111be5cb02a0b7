"""Gradients and activations of a model on a fixed probe batch."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

log = logging.getLogger(__name__)


@dataclass
class Variable:
    """One model variable with the top-level layer that owns it."""

    layer_index: int
    layer_name: str
    path: str
    value: Any


def owners(model: keras.Model, trainable_only: bool) -> list[Variable]:
    """Every variable of the model, attributed to its real top-level layer and index."""
    out: list[Variable] = []
    for index, layer in enumerate(model.layers):
        variables = layer.trainable_weights if trainable_only else layer.weights
        out.extend(Variable(index, layer.name, v.path, v) for v in variables)
    return out


def _loss_fn(model: keras.Model) -> Any:
    loss = model.loss
    if isinstance(loss, (list, tuple, dict)):
        raise TypeError("gradients of multi-output losses are not reported")
    return keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss


def probe_gradients(
    model: keras.Model, x: np.ndarray, y: np.ndarray
) -> list[tuple[Variable, np.ndarray]]:
    """Gradient of the compiled loss (plus regularisation) w.r.t. every trainable variable."""
    import tensorflow as tf

    loss_fn = _loss_fn(model)
    variables = owners(model, trainable_only=True)
    with tf.GradientTape() as tape:
        pred = model(x, training=False)
        loss = loss_fn(y, pred)
        if model.losses:
            loss = loss + tf.add_n([tf.cast(term, loss.dtype) for term in model.losses])
    grads = tape.gradient(loss, [v.value for v in variables])
    return [(v, np.asarray(g)) for v, g in zip(variables, grads, strict=True) if g is not None]


class ActivationProbe:
    """Outputs of every non-input layer on the probe batch, through one extractor model."""

    def __init__(self, model: keras.Model) -> None:
        self.layers = [
            (i, layer)
            for i, layer in enumerate(model.layers)
            if not isinstance(layer, keras.layers.InputLayer)
        ]
        inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
        self.extractor = keras.Model(inputs, [layer.output for _, layer in self.layers])

    def __call__(self, x: np.ndarray) -> list[tuple[int, str, np.ndarray]]:
        """(layer index, layer name, activation) of every layer for batch `x`."""
        outputs = self.extractor(x, training=False)
        if not isinstance(outputs, (list, tuple)):
            outputs = [outputs]
        return [
            (i, layer.name, np.asarray(out))
            for (i, layer), out in zip(self.layers, outputs, strict=True)
        ]
