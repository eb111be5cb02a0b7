"""Build a Keras model from user JSON (Keras 3 or tf.keras 2.x), safely."""

from __future__ import annotations

import copy
import logging
import math
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import keras

from trainer.errors import ModelError
from trainer.legacy import convert_legacy
from trainer.modeljson import check_model_json, is_legacy

log = logging.getLogger(__name__)

DEFAULT_MAX_LAYER_OUTPUT = 50_000_000
# Keras 3 walks a functional graph with one Python frame per layer on its longest path
# (ResNetRS420: about 2,000). Models are built in a thread with room for GRAPH_FRAMES frames;
# a deeper graph is refused as before, and JSON nesting is capped (MAX_DEPTH) before this.
GRAPH_FRAMES = 12_000
GRAPH_STACK_BYTES = 256 * 2**20  # address space only: pages are used as frames need them
_DEEP = threading.Lock()  # the recursion limit is the interpreter's: one deep build at a time
T = TypeVar("T")


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
    return with_deep_stack(lambda: _build(config, max_params, max_layer_output))


def _build(config: dict[str, Any], max_params: int, max_layer_output: int) -> keras.Model:
    check_size(config, max_params, max_layer_output)
    model = _deserialize(config)
    if model.count_params() > max_params:  # the dry build already said no; kept as a backstop
        raise ModelError(f"model: over the limit of {max_params} parameters")
    return model


def with_deep_stack(build: Callable[[], T]) -> T:
    """build() in a thread whose stack and recursion limit fit GRAPH_FRAMES Python frames.
    Keras keeps its state per thread (the random seed, dtype policy, name counters): the
    thread starts with the caller's and hands its own back, as if build() ran here."""
    from keras.src.backend.common import global_state

    trackers = (global_state.GLOBAL_STATE_TRACKER, global_state.GLOBAL_SETTINGS_TRACKER)
    state = [dict(vars(t)) for t in trackers]
    outcome: dict[str, Any] = {}

    def run() -> None:
        for tracker, values in zip(trackers, state, strict=True):
            vars(tracker).update(values)
        try:
            outcome["value"] = build()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            outcome["error"] = exc
        state[:] = [dict(vars(t)) for t in trackers]

    with _DEEP:
        limit, stack = sys.getrecursionlimit(), threading.stack_size(GRAPH_STACK_BYTES)
        sys.setrecursionlimit(max(limit, GRAPH_FRAMES))
        try:
            worker = threading.Thread(target=run, name="model-build", daemon=True)
            worker.start()
            worker.join()
        finally:
            threading.stack_size(stack)
            sys.setrecursionlimit(limit)
    for tracker, values in zip(trackers, state, strict=True):
        vars(tracker).update(values)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def check_size(config: dict[str, Any], max_params: int, max_layer_output: int) -> None:
    """Count parameters and per-sample layer outputs on a dry build that allocates no weights."""
    with dry_run():
        model = _deserialize(config)
        params = model.count_params()
        # Functional models list keras.ops nodes (`x + y` may broadcast) apart from layers
        operations = getattr(model, "operations", model.layers)
        outputs = [(op.name, _size(op)) for op in operations]
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
            f"{GRAPH_FRAMES} layers on its longest path); use a shallower model"
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


def _size(operation: Any) -> int:
    """Values per sample of a layer's or op's largest output, over all its calls."""
    try:
        tensors = [t for node in operation._inbound_nodes for t in node.output_tensors]
        shapes = [tuple(t.shape) for t in tensors]
    except (AttributeError, ValueError, TypeError):
        return 0
    return max((math.prod(d or 1 for d in s[1:]) for s in shapes), default=0)
