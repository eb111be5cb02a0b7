"""Model JSON checks before any deserialisation, and tf.keras 2.x legacy conversion."""

from __future__ import annotations

import copy
import math
import re
from functools import cache
from typing import Any

from trainer.errors import ModelError

# Layers that run arbitrary code, load files or wrap foreign frameworks.
DENIED_LAYERS = frozenset(
    {
        "Lambda",
        "Layer",
        "TFSMLayer",
        "TorchModuleWrapper",
        "JaxLayer",
        "FlaxLayer",
        "Pipeline",
        "Wrapper",
        "TextVectorization",
        "StringLookup",
        "IntegerLookup",
        "Hashing",
        "HashedCrossing",
        "MelSpectrogram",  # audio front-ends size their tables from config integers
        "STFTSpectrogram",
    }
)
MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
POLICY_CLASSES = frozenset({"DTypePolicy", "FloatDTypePolicy", "Policy"})
MAX_INT = 10**8  # no sane layer size or shape is larger; stops allocation bombs early
MAX_DEPTH = 64
NESTED_MODULES = {
    "_initializer": "keras.initializers",
    "_regularizer": "keras.regularizers",
    "_constraint": "keras.constraints",
}
LAYER_KEYS = frozenset({"layer", "cell", "forward_layer", "backward_layer", "cells", "layers"})
# Keras sub-packages whose objects a model may name; keras.utils, keras.saving, keras.config
# and the like hold functions that fetch files or switch safe mode off.
KERAS_PACKAGES = frozenset(
    {"layers", "initializers", "regularizers", "constraints", "activations", "models", "engine"}
    | {"dtype_policies", "mixed_precision"}
)
# Keys that only serve code loading, file loading or turning the safety checks off.
DENIED_KEYS = frozenset(
    {
        "safe_mode",
        "enable_unsafe_deserialization",
        "custom_objects",
        "filepath",
        "weights",
        "function",
        "function_type",
        "module_objects",
    }
)
# Sizes and shapes: whole numbers (or null), never strings or floats.
SIZE_KEYS = frozenset(
    {
        "units",
        "filters",
        "kernel_size",
        "strides",
        "pool_size",
        "dilation_rate",
        "input_dim",
        "output_dim",
        "num_heads",
        "key_dim",
        "value_dim",
        "depth_multiplier",
        "groups",
        "n",
        "size",
        "target_shape",
        "batch_shape",
        "batch_input_shape",
        "input_shape",
        "shape",
        "cropping",
    }
)
PATH_LIKE = re.compile(r"://|^file:|^[a-z]:[\\/]|^[/~\\]|\.\.[/\\]", re.IGNORECASE)


@cache
def allowed_classes() -> frozenset[str]:
    """Built-in Keras layers, initializers, regularizers and constraints, minus the denied."""
    import keras

    names: set[str] = set()
    for module, base in (
        (keras.layers, keras.layers.Layer),
        (keras.initializers, keras.initializers.Initializer),
        (keras.regularizers, keras.regularizers.Regularizer),
        (keras.constraints, keras.constraints.Constraint),
    ):
        names.update(
            n
            for n in dir(module)
            if isinstance(getattr(module, n), type) and issubclass(getattr(module, n), base)
        )
    return frozenset(names - DENIED_LAYERS) | MODEL_CLASSES | POLICY_CLASSES


@cache
def allowed_activations() -> frozenset[str]:
    """Names of Keras's built-in activation functions."""
    import keras

    skip = {"get", "serialize", "deserialize"}
    return frozenset(
        n
        for n in dir(keras.activations)
        if not n.startswith("_") and n not in skip and callable(getattr(keras.activations, n))
    )


def check_model_json(config: Any) -> None:
    """Refuse anything that is not plain built-in Keras, naming where it is in the JSON."""
    name = config.get("class_name") if isinstance(config, dict) else None
    if not isinstance(name, str) or name not in MODEL_CLASSES:
        raise ModelError(
            "model: the top level must be a Keras Sequential or functional model "
            "(class_name 'Sequential' or 'Functional'); export it with model.to_json()"
        )
    _check_structure(config)
    _check(config, "model", 0)


def _check_structure(config: dict[str, Any]) -> None:
    """The shape every model JSON has: a config object whose layers are class-named objects."""
    inner = config.get("config")
    if not isinstance(inner, dict):
        raise ModelError("model.config: must be an object holding the model's layers")
    layers = inner.get("layers", [])
    if not isinstance(layers, list):
        raise ModelError("model.config.layers: must be a list of layer objects")
    for i, layer in enumerate(layers):
        if not isinstance(layer, dict) or not isinstance(layer.get("class_name"), str):
            raise ModelError(
                f"model.config.layers[{i}]: each layer must be an object with a "
                "class_name such as 'Dense'; export the model with model.to_json()"
            )


def _check(value: Any, where: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise ModelError(f"{where[:200]}...: model JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if "class_name" in value:
            _check_object(value, where)
        for key, item in value.items():
            _check_entry(str(key), item, f"{where}.{key}")
            _check(item, f"{where}.{key}", depth + 1)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if _is_huge(item):
                raise ModelError(f"{where}[{i}]: {item} is too large (limit {MAX_INT})")
            _check(item, f"{where}[{i}]", depth + 1)
    elif isinstance(value, str) and PATH_LIKE.search(value):
        raise ModelError(
            f"{where}: strings that are paths or URLs are not allowed ({value[:60]!r}); "
            "a model JSON holds the architecture only"
        )
    elif isinstance(value, float) and not math.isfinite(value):
        raise ModelError(f"{where}: {value} is not a finite number; use a real value")


def _check_entry(key: str, item: Any, where: str) -> None:
    """Checks that depend on the key: denied keys, activations, sizes and numbers."""
    if key in DENIED_KEYS:
        raise ModelError(
            f"{where}: {key!r} is not allowed in a model JSON (it loads code or files, or "
            "turns safe mode off); remove it: models are built in safe mode only"
        )
    if key in ("activation", "recurrent_activation") and isinstance(item, str):
        _check_activation(item, where)
    elif key in SIZE_KEYS:
        _check_size(item, where)
    elif _is_huge(item) and key != "seed":
        raise ModelError(f"{where}: {item} is too large (limit {MAX_INT})")
    elif isinstance(item, str) and key not in ("name", "keras_version") and _is_number(item):
        raise ModelError(
            f"{where}: the number {item[:30]!r} is written as a string; write it without quotes"
        )


def _check_size(item: Any, where: str) -> None:
    """A size or shape: a whole number, null, or (nested) lists of them, each within MAX_INT."""
    if isinstance(item, list):
        for i, part in enumerate(item):
            _check_size(part, f"{where}[{i}]")
        return
    if item is None:
        return
    if isinstance(item, bool) or not isinstance(item, int):
        raise ModelError(
            f"{where}: expected a whole number, got {item!r}; write sizes as plain "
            "integers without quotes, e.g. 64"
        )
    if abs(item) > MAX_INT:
        raise ModelError(f"{where}: {item} is too large (limit {MAX_INT})")


def _is_huge(item: Any) -> bool:
    """A number beyond any sane size (NaN and inf are refused elsewhere)."""
    if isinstance(item, float) and not math.isfinite(item):
        return False
    return isinstance(item, (int, float)) and not isinstance(item, bool) and abs(item) > MAX_INT


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_object(obj: dict[str, Any], where: str) -> None:
    name, module, registered = obj.get("class_name"), obj.get("module"), obj.get("registered_name")
    for key, value in (("class_name", name), ("module", module), ("registered_name", registered)):
        if value is not None and not isinstance(value, str):
            raise ModelError(f"{where}.{key}: must be a string, got {type(value).__name__}")
    if name == "__keras_tensor__":
        return
    if module is not None and module.split(".")[0] != "keras":
        raise ModelError(
            f"{where}.module: module {module!r} is not Keras; only built-in Keras objects "
            "are allowed"
        )
    if module is not None and not _keras_module(module):
        raise ModelError(
            f"{where}.module: {module!r} is not an allowed Keras package; only built-in "
            "Keras layers, initializers, regularizers, constraints and activations are allowed"
        )
    if name in ("__lambda__", "function"):
        if name == "function" and isinstance(obj.get("config"), str):
            _check_activation(obj["config"], where)
            return
        raise ModelError(
            f"{where}: Python code in a model (Lambda) is not allowed; "
            "use built-in Keras layers only"
        )
    if registered not in (None, name, "Functional"):
        raise ModelError(f"{where}: registered custom object {registered!r} is not allowed")
    if name not in allowed_classes():
        raise ModelError(
            f"{where}: {name!r} is not an allowed built-in Keras layer, "
            "initializer, regularizer or constraint (Lambda and custom layers are refused)"
        )


def _keras_module(module: str) -> bool:
    """keras, keras.<package>... or keras.src.<package>... for the allowed packages only."""
    parts = module.split(".")
    if len(parts) == 1:
        return True
    package = parts[2] if parts[1] == "src" and len(parts) > 2 else parts[1]
    return package in KERAS_PACKAGES


def _check_activation(name: str, where: str) -> None:
    if name not in allowed_activations():
        raise ModelError(
            f"{where}: unknown activation {name!r}; use a Keras built-in such as "
            "'relu', 'softmax' or 'linear'"
        )


def is_legacy(config: dict[str, Any]) -> bool:
    """tf.keras 2.x JSON: no `module` keys, or a keras_version below 3."""
    version = str(config.get("keras_version", ""))
    return "module" not in config or version.startswith(("1.", "2."))


def convert_legacy(config: dict[str, Any]) -> dict[str, Any]:
    """Rewrite tf.keras 2.x JSON into the Keras 3 form that deserialisation accepts."""
    out = copy.deepcopy(config)
    for key in ("keras_version", "backend"):
        out.pop(key, None)
    name = out.get("class_name")
    out["module"] = "keras"
    out["class_name"] = "Functional" if name in ("Model", "Functional") else name
    if out["class_name"] == "Functional":
        out["module"], out["registered_name"] = "keras.src.models.functional", "Functional"
    inner = out.get("config", {})
    layers = [_convert_layer(layer) for layer in inner.get("layers", [])]
    if name == "Sequential":
        layers = _sequential_input(config.get("config", {}).get("layers", []), layers)
    inner["layers"] = layers
    return out


def _sequential_input(
    original: list[dict[str, Any]], layers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A legacy Sequential may declare its input on the first layer: make it an InputLayer."""
    if not layers or layers[0]["class_name"] == "InputLayer":
        return layers
    first = original[0].get("config", {})
    shape = first.get("batch_input_shape")
    if shape is None:
        return layers
    head = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "registered_name": None,
        "config": {
            "batch_shape": shape,
            "dtype": _dtype(first.get("dtype")) or "float32",
            "name": f"{first.get('name', 'input')}_input",
        },
    }
    return [head, *layers]


def _convert_layer(layer: dict[str, Any]) -> dict[str, Any]:
    layer = _convert_object(layer, "keras.layers")
    conf = layer.get("config", {})
    shape = conf.pop("batch_input_shape", None)
    if layer["class_name"] == "InputLayer":
        conf.setdefault("batch_shape", shape)
        conf.pop("input_shape", None)
    return layer


def _convert_object(obj: dict[str, Any], module: str) -> dict[str, Any]:
    obj.setdefault("module", module)
    obj.setdefault("registered_name", None)
    conf = obj.get("config")
    if not isinstance(conf, dict):
        return obj
    for key, value in list(conf.items()):
        if key == "dtype":
            conf[key] = _dtype(value)
        elif isinstance(value, dict) and "class_name" in value:
            conf[key] = _convert_nested(key, value)
        elif key in LAYER_KEYS and isinstance(value, list):
            conf[key] = [_convert_layer(v) if isinstance(v, dict) else v for v in value]
    return obj


def _convert_nested(key: str, value: dict[str, Any]) -> dict[str, Any]:
    if key in LAYER_KEYS:
        return _convert_layer(value)
    for suffix, module in NESTED_MODULES.items():
        if key.endswith(suffix):
            return _convert_object(value, module)
    return _convert_object(value, "keras.layers")


def _dtype(value: Any) -> Any:
    """Legacy mixed-precision policies are objects; Keras 3 accepts their name."""
    if (
        isinstance(value, dict)
        and value.get("class_name") in POLICY_CLASSES
        and "module" not in value
    ):
        return value.get("config", {}).get("name", "float32")
    return value
