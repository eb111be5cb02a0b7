"""Build a Keras model from user JSON (Keras 3 or tf.keras 2.x), safely."""

from __future__ import annotations

import copy
import logging
import math
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import keras

from trainer.errors import ModelError
from trainer.legacy import convert_legacy
from trainer.modeljson import check_model_json, is_legacy

log = logging.getLogger(__name__)

DEFAULT_MAX_LAYER_OUTPUT = 50_000_000


def load_model(
    config: dict[str, Any], max_params: int, max_layer_output: int = DEFAULT_MAX_LAYER_OUTPUT
) -> keras.Model:
    """Check the JSON, size it without allocating, then deserialise it in safe mode."""
    check_model_json(config)
    if is_legacy(config):
        try:
            config = convert_legacy(config)
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as exc:
            raise ModelError(
                f"model: not a tf.keras model JSON ({type(exc).__name__}: {exc}); "
                "export the model with model.to_json()"
            ) from exc
        check_model_json(config)
    check_size(config, max_params, max_layer_output)
    model = _deserialize(config)
    if model.count_params() > max_params:  # the dry build already said no; kept as a backstop
        raise ModelError(f"model: over the limit of {max_params} parameters")
    return model


def check_size(config: dict[str, Any], max_params: int, max_layer_output: int) -> None:
    """Count parameters and per-sample layer outputs on a dry build that allocates no weights."""
    with dry_run():
        model = _deserialize(config)
        params = model.count_params()
        outputs = [(layer.name, _size(layer)) for layer in model.layers]
    if params > max_params:
        raise ModelError(
            f"model: {params} parameters exceed the limit of {max_params} (counted from "
            "the JSON before building); use a smaller model or ask the operator to "
            "raise NNT_TRAINER_MAX_PARAMS"
        )
    for name, size in outputs:
        if size > max_layer_output:
            raise ModelError(
                f"model: layer {name!r} outputs {size} values per sample, over the limit of "
                f"{max_layer_output}; shrink that layer or ask the operator to raise "
                "NNT_TRAINER_MAX_LAYER_OUTPUT"
            )


@contextmanager
def dry_run() -> Iterator[None]:
    """Variables created inside are shapes only; they are dropped, never initialised."""
    from keras.src.backend.common import global_state

    key = "uninitialized_variables"
    before = list(global_state.get_global_attribute(key, []) or [])
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        global_state.set_global_attribute(key, before)


def _deserialize(config: dict[str, Any]) -> keras.Model:
    try:  # Keras pops keys from the config it reads: give it a copy
        model = keras.saving.deserialize_keras_object(copy.deepcopy(config), safe_mode=True)
    except RecursionError as exc:  # Keras walks the graph with one frame per layer of depth
        raise ModelError(
            "model: the layer graph is too deep for Keras 3 to build (over about "
            f"{sys.getrecursionlimit()} layers on its longest path); use a shallower model"
        ) from exc
    except Exception as exc:  # Keras raises many types for one bad config
        reason = _culprit(config, exc)
        raise ModelError(f"model: cannot build the model from its JSON: {reason}") from exc
    if not isinstance(model, keras.Model):
        raise ModelError("model: the JSON does not describe a Keras model")
    if not model.built:
        raise ModelError(
            "model: the input shape is unknown; start the model with an Input "
            "layer (keras.Input(shape=...)) before exporting it"
        )
    return model


def _culprit(config: dict[str, Any], exc: Exception) -> str:
    """Name the first layer that fails on its own, with Keras's reason, else the reason."""
    for i, layer in enumerate(config.get("config", {}).get("layers", [])):
        try:
            with dry_run():
                keras.saving.deserialize_keras_object(copy.deepcopy(layer), safe_mode=True)
        except Exception as inner:
            name = layer.get("config", {}).get("name", "?")
            return f"layers[{i}] ({layer.get('class_name')} {name!r}): {_reason(inner)}"
    return _reason(exc)


def _reason(exc: Exception) -> str:
    """Keras wraps the real cause in long text; keep its last sentence."""
    text = str(exc)
    if "Exception encountered:" in text:
        text = text.rsplit("Exception encountered:", 1)[1]
    return text.strip()[:300]


def _size(layer: keras.layers.Layer) -> int:
    """Values per sample of a layer's output (largest output if it has several)."""
    try:
        shapes = [tuple(t.shape) for t in keras.tree.flatten(layer.output)]
    except (AttributeError, ValueError, TypeError):
        return 0
    return max((math.prod(d or 1 for d in s[1:]) for s in shapes), default=0)
