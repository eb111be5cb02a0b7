"""What the rules need to know about a Keras model: activations, the loss, the references.

The only module of trainer.diagnosis that imports Keras; everything it reads is optional, and
a model it cannot read (a subclassed model, several outputs) only yields fewer facts.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import keras
import numpy as np

log = logging.getLogger(__name__)

PROBABILISTIC = ("crossentropy", "kl_divergence", "kldivergence", "poisson")


def activation_name(layer: Any) -> str | None:
    """The name of a layer's activation function ('relu', 'tanh', ...), or None."""
    if isinstance(layer, keras.layers.ReLU):
        return "relu"
    fn = getattr(layer, "activation", None)
    if fn is None:
        return None
    name = getattr(fn, "__name__", None) or type(fn).__name__
    return str(name).lower()


def activations(model: keras.Model) -> dict[str, str | None]:
    """Layer name -> activation function name, for every layer."""
    return {layer.name: activation_name(layer) for layer in model.layers}


def loss_of(model: keras.Model) -> Any:
    """The compiled loss function (object or function), or None."""
    loss = getattr(model, "loss", None)
    if isinstance(loss, (list, tuple, dict)) or loss is None:
        return None
    try:
        return keras.losses.get(loss) if isinstance(loss, str) else loss
    except ValueError:
        return None


def loss_name(loss: Any) -> str:
    """A loss's lower-case name without underscores: 'sparsecategoricalcrossentropy'."""
    name = getattr(loss, "name", None) or getattr(loss, "__name__", None) or type(loss).__name__
    return str(name).replace("_", "").lower()


def from_logits(loss: Any) -> bool | None:
    """Whether the loss reads logits; None when it does not say."""
    value = getattr(loss, "from_logits", None)
    if value is None and hasattr(loss, "get_config"):
        try:
            value = loss.get_config().get("from_logits")
        except Exception:  # a custom loss's config is its own business
            value = None
    return bool(value) if value is not None else (False if loss is not None else None)


def output_activation(model: keras.Model) -> str | None:
    """The activation of the model's last layer (an Activation layer counts)."""
    for layer in reversed(model.layers):
        name = activation_name(layer)
        if name is not None:
            return name
        if getattr(layer, "weights", None):
            return None  # a last layer with weights and no activation: linear
    return None


def reference_loss(model: keras.Model, y: np.ndarray | None) -> float | None:
    """The loss of the best constant prediction on the probe labels: what a network that has
    learned nothing scores. Classification: the labels' frequencies; regression: their mean."""
    loss = loss_of(model)
    if loss is None or y is None or not len(y):
        return None
    try:
        pred = _constant_prediction(model, loss, np.asarray(y))
        if pred is None:
            return None
        pred = keras.ops.convert_to_tensor(np.asarray(pred, dtype="float32"))
        value = float(np.mean(np.asarray(loss(keras.ops.convert_to_tensor(y), pred))))
        return value if math.isfinite(value) else None
    except Exception:  # a reference is a nicety: no loss of ours may stop a run for it
        log.debug("no reference loss for this model", exc_info=True)
        return None


def _constant_prediction(model: keras.Model, loss: Any, y: np.ndarray) -> np.ndarray | None:
    units = int(model.outputs[0].shape[-1]) if model.outputs else 1
    name, logits = loss_name(loss), bool(from_logits(loss))
    n = len(y)
    if "sparsecategorical" in name:
        freq = np.bincount(y.reshape(-1).astype(int), minlength=units)[:units] / y.size
        return _probabilities(np.tile(freq, (n, 1)), logits)
    if "categorical" in name or ("crossentropy" in name and units > 1 and "binary" not in name):
        freq = y.reshape(n, -1).mean(axis=0)
        return _probabilities(np.tile(freq, (n, 1)), logits)
    if "binary" in name:
        mean = y.reshape(n, -1).mean(axis=0)
        mean = np.clip(mean, 1e-7, 1 - 1e-7)
        pred = np.tile(mean, (n, 1))
        return np.log(pred / (1 - pred)) if logits else pred
    if y.ndim >= 1 and np.issubdtype(y.dtype, np.number):
        return np.tile(y.reshape(n, -1).mean(axis=0), (n, 1)).reshape((n,) + y.shape[1:])
    return None


def _probabilities(freq: np.ndarray, logits: bool) -> np.ndarray:
    freq = np.clip(freq, 1e-7, 1.0)
    freq = freq / freq.sum(axis=-1, keepdims=True)
    return np.log(freq) if logits else freq


def input_scale(x: np.ndarray | None) -> dict[str, float | None]:
    """How large the probe inputs are: their largest magnitude and their typical spread."""
    if x is None:
        return {}
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        return {}
    finite = arr[np.isfinite(arr)]
    if not finite.size:
        return {}
    return {"input_abs_max": float(np.max(np.abs(finite))), "input_std": float(np.std(finite))}


def output_facts(model: keras.Model, x: np.ndarray | None, y: np.ndarray | None) -> dict[str, Any]:
    """The facts that do not change during training: loss, from_logits, output activation,
    the output's width, the reference loss and the inputs' scale."""
    loss = loss_of(model)
    facts: dict[str, Any] = {
        "loss": loss_name(loss) if loss is not None else None,
        "from_logits": (1.0 if from_logits(loss) else 0.0) if loss is not None else None,
        "output_activation": output_activation(model),
        "reference_loss": reference_loss(model, y),
        **input_scale(x),
    }
    return facts
