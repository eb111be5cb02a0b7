"""Gradients and activations of a model on a fixed probe batch."""

from __future__ import annotations

import inspect
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


def training_head(model: keras.Model, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The first `size` training samples of the `model.fit` call now running, or None.

    Keras shows callbacks no batch, so this reads what `fit` was given from its frame: arrays
    (NumPy or tensors), a `tf.data.Dataset` or a `keras.utils.PyDataset` (their first batch).
    A Python generator would lose a batch to the peek, and multi-input data is not probed:
    both give None.
    """
    frame = inspect.currentframe()
    try:
        while frame is not None:
            if frame.f_code.co_name == "fit" and frame.f_locals.get("self") is model:
                return _head(frame.f_locals.get("x"), frame.f_locals.get("y"), size)
            frame = frame.f_back
        return None
    except Exception:  # whatever the data is, a failed peek only means no fallback probe
        log.debug("no probe batch from the training data", exc_info=True)
        return None
    finally:
        del frame  # frames hold the caller's locals: never keep one alive


def _head(x: Any, y: Any, size: int) -> tuple[np.ndarray, np.ndarray] | None:
    import tensorflow as tf

    if isinstance(x, tf.data.Dataset):
        x, y = _pair(next(iter(x.take(1))))
    elif isinstance(x, keras.utils.PyDataset):
        x, y = _pair(x[0])
    if x is None or y is None or not hasattr(x, "shape") or not hasattr(y, "shape"):
        return None
    return np.asarray(x[:size]), np.asarray(y[:size])


def _pair(batch: Any) -> tuple[Any, Any]:
    """(features, labels) of a batch `(x, y)` or `(x, y, sample_weight)`; else (None, None)."""
    if isinstance(batch, (tuple, list)) and len(batch) >= 2:
        return batch[0], batch[1]
    return None, None


def _loss_fn(model: keras.Model) -> Any:
    loss = model.loss
    if isinstance(loss, (list, tuple, dict)):
        raise TypeError("gradients of multi-output losses are not reported")
    return keras.losses.get(loss) if isinstance(loss, (str, dict)) else loss


# Models this large get their probe pass traced (Probe): about ResNet18's size.
TRACED_PARAMS = 10_000_000


class Probe:
    """The probe batch's pass: the gradient of the compiled loss (plus regularisation) w.r.t.
    the chosen variables and the outputs of the chosen layers, from one forward pass.

    The backward pass stops at the earliest chosen variable, and the extractor model outputs
    only the chosen layers (and the model's output, which the loss needs): watching the last
    block of a ResNet50 costs one forward pass and a short backward one. On a model of
    TRACED_PARAMS parameters or more the pass is traced once (tf.function; the probe batch
    never changes shape): on a ResNet50 the trace costs about one second at the first logged
    epoch, and each later pass 0.1-0.3 s instead of the 0.6 s of Keras's eager layer calls.
    A smaller model runs eagerly: its trace would cost more than all its passes save.
    """

    def __init__(self, model: keras.Model, variables: list[Variable], layers: list[int]) -> None:
        self.model, self.variables = model, variables
        self.layers = [
            (i, model.layers[i])
            for i in layers
            if not isinstance(model.layers[i], keras.layers.InputLayer)
        ]
        self.loss_fn = _loss_fn(model) if variables else None
        self.extractor: keras.Model | None = None
        if self.layers:
            inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
            outputs = [layer.output for _, layer in self.layers]
            self.extractor = keras.Model(inputs, [*outputs, model.outputs[0]])
        self._traced = self._pass
        if model.count_params() >= TRACED_PARAMS:
            import tensorflow as tf

            self._traced = tf.function(self._pass)

    def __call__(
        self, x: np.ndarray, y: np.ndarray
    ) -> tuple[list[tuple[Variable, np.ndarray]], list[tuple[int, str, np.ndarray]]]:
        """(variable, gradient) of the chosen variables that have one, and (layer index,
        layer name, output) of the chosen layers, for the batch `x`, `y`."""
        outputs, grads = self._traced(x, y)
        return (
            [
                (v, np.asarray(g))
                for v, g in zip(self.variables, grads, strict=True)
                if g is not None
            ],
            [
                (i, layer.name, np.asarray(out))
                for (i, layer), out in zip(self.layers, outputs, strict=True)
            ],
        )

    def _pass(self, x: Any, y: Any) -> tuple[list[Any], list[Any]]:
        import tensorflow as tf

        with tf.GradientTape(watch_accessed_variables=self.loss_fn is not None) as tape:
            if self.extractor is not None:
                *outputs, pred = self.extractor(x, training=False)
            else:
                outputs, pred = [], self.model(x, training=False)
            loss = None
            if self.loss_fn is not None:
                loss = self.loss_fn(y, pred)
                if self.model.losses:
                    loss = loss + tf.add_n(
                        [tf.cast(term, loss.dtype) for term in self.model.losses]
                    )
        grads = tape.gradient(loss, [v.value for v in self.variables]) if loss is not None else []
        return list(outputs), list(grads)
