"""Model JSON checks before any deserialisation: built-in Keras only, sizes bounded."""

from __future__ import annotations

import math
import re
import sys
import types
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
# tf.keras 2 records Python arithmetic on tensors (`a + b`, `x * 0.5`) as a TFOpLambda layer
# naming a TensorFlow function. Only these become Keras layers (trainer.legacy): the merge
# layer for two tensors (None: none exists), Rescaling for a tensor and a number. Any other
# TensorFlow function is code outside Keras and is refused.
TF_OP = "TFOpLambda"
TF_OPS: dict[str, str | None] = {
    "__operators__.add": "Add",
    "math.add": "Add",
    "math.subtract": "Subtract",
    "math.multiply": "Multiply",
    "math.truediv": None,
    "math.divide": None,
}
# tf.keras 2.13+ writes TensorFlow's own initializers (tf.constant_initializer) under this
# module; their class names are Keras's, and conversion rewrites the module to Keras's.
TF_INITIALIZERS = "tensorflow.python.ops.init_ops_v2"
# Keras's applications define a few layers of their own (ConvNeXt's LayerScale and
# StochasticDepth, InceptionResNetV2's CustomScaleLayer): Keras's code, allowed by exact module
# and class (application_layers). tf.keras 2 writes its copy's module, or none before 2.13.
APPLICATIONS = "keras.src.applications"
LEGACY_APPLICATION = re.compile(r"(?:tf_keras|keras)(?:\.src)?\.applications\.(\w+)")
# Keras 3 writes Python operators on tensors in a functional model (`x + 3`, `a * b`, `~m`)
# and Embedding(mask_zero=True)'s mask as nodes of these keras.ops classes: elementwise, no
# options, no callables, no file access, outputs no larger than their broadcast inputs (and
# counted like any layer's). Every other op is refused: keras.ops.core's Cond, WhileLoop, Map,
# Scan take Python functions; Zeros, Tile, Arange... size themselves from arguments.
KERAS_OPS: dict[str, frozenset[str]] = {
    "keras.src.ops.numpy": frozenset(
        {"Add", "Subtract", "Multiply", "Divide", "TrueDivide", "FloorDivide", "Mod", "Power"}
        | {"Negative", "Absolute", "Abs", "Maximum", "Minimum", "Square", "Sqrt", "Exp", "Log"}
        | {"Equal", "NotEqual", "Less", "LessEqual", "Greater", "GreaterEqual"}
        | {"LogicalAnd", "LogicalOr", "LogicalNot", "LogicalXor"}
    ),
    "keras.src.ops.core": frozenset({"Cast"}),
}
OPS_PACKAGE = "keras.src.ops."
GRAPH_NODE = re.compile(r"\.config\.layers\[\d+\]$")  # a layer of a (functional) model
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
def application_layers() -> dict[str, type]:
    """Layers Keras's applications define for themselves, by "module.ClassName": the Layer
    subclasses defined in the modules that hold keras.applications' builders."""
    import keras

    builders = (getattr(keras.applications, n) for n in dir(keras.applications))
    modules = {f.__module__ for f in builders if isinstance(f, types.FunctionType)}
    return {
        f"{module}.{name}": cls
        for module in sorted(m for m in modules if m.startswith(APPLICATIONS + "."))
        for name, cls in vars(sys.modules[module]).items()
        if isinstance(cls, type)
        and issubclass(cls, keras.layers.Layer)
        and cls.__module__ == module
    }


def application_layer(module: str | None, name: Any, legacy: bool) -> type | None:
    """The application layer an object names, else None: by its exact Keras 3 module, or in
    tf.keras 2 JSON by its tf_keras counterpart (or by a class name no other one has)."""
    layers = application_layers()
    if not isinstance(name, str):
        return None
    if module is None:
        found = [cls for key, cls in layers.items() if key.rpartition(".")[2] == name]
        return found[0] if legacy and len(found) == 1 else None
    legacy_module = LEGACY_APPLICATION.fullmatch(module) if legacy else None
    if legacy_module:
        module = f"{APPLICATIONS}.{legacy_module.group(1)}"
    return layers.get(f"{module}.{name}")


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
    _check(config, "model", 0, is_legacy(config))


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


def _check(value: Any, where: str, depth: int, legacy: bool) -> None:
    if depth > MAX_DEPTH:
        raise ModelError(f"{where[:200]}...: model JSON nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        if legacy and value.get("class_name") == TF_OP:
            value = _check_tf_op(value, where)
        elif "class_name" in value:
            _check_object(value, where, legacy)
        for key, item in value.items():
            _check_entry(str(key), item, f"{where}.{key}")
            _check(item, f"{where}.{key}", depth + 1, legacy)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if _is_huge(item):
                raise ModelError(f"{where}[{i}]: {item} is too large (limit {MAX_INT})")
            _check(item, f"{where}[{i}]", depth + 1, legacy)
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


def _check_object(obj: dict[str, Any], where: str, legacy: bool) -> None:
    name, module, registered = obj.get("class_name"), obj.get("module"), obj.get("registered_name")
    for key, value in (("class_name", name), ("module", module), ("registered_name", registered)):
        if value is not None and not isinstance(value, str):
            raise ModelError(f"{where}.{key}: must be a string, got {type(value).__name__}")
    if name == "__keras_tensor__":
        return
    if application_layer(module, name, legacy) is not None:
        # tf_keras registers CustomScaleLayer as Custom>CustomScaleLayer; conversion drops it
        legacy_names = (f"Custom>{name}",) if legacy else ()
        _check_registered(registered, (None, name, *legacy_names), where)
        return
    if isinstance(module, str) and module.startswith(OPS_PACKAGE) and not legacy:
        _check_op(module, name, registered, where)
        return
    _check_module(module, where, legacy)
    if name in ("__lambda__", "function"):
        if name == "function" and isinstance(obj.get("config"), str):
            _check_activation(obj["config"], where)
            return
        raise ModelError(
            f"{where}: Python code in a model (Lambda) is not allowed; "
            "use built-in Keras layers only"
        )
    _check_registered(registered, (None, name, "Functional"), where)
    if name not in allowed_classes():
        raise ModelError(
            f"{where}: {name!r} is not an allowed built-in Keras layer, "
            "initializer, regularizer or constraint (Lambda and custom layers are refused)"
        )


def _check_registered(registered: str | None, allowed: tuple[str | None, ...], where: str) -> None:
    """Keras looks a registered name up among custom objects before anything else."""
    if registered not in allowed:
        raise ModelError(f"{where}: registered custom object {registered!r} is not allowed")


def _check_op(module: str, name: Any, registered: str | None, where: str) -> None:
    """A keras.ops node of a functional model: one of KERAS_OPS, where a layer would be."""
    if name not in KERAS_OPS.get(module, ()):
        raise ModelError(
            f"{where}: the operation {module}.{name} is not allowed; only elementwise "
            "arithmetic and comparisons on tensors (+, -, *, /, **, <, !=, &...) and cast are. "
            "Build the rest from keras.layers"
        )
    if not GRAPH_NODE.search(where):
        raise ModelError(
            f"{where}: the operation {module}.{name} can only be a node of a functional model"
        )
    _check_registered(registered, (None, name), where)


def _check_module(module: str | None, where: str, legacy: bool) -> None:
    """Keras's own packages only; in tf.keras 2 JSON also tf_keras's and TF_INITIALIZERS
    (conversion replaces every module with Keras 3's, and the result is checked strictly)."""
    if legacy and module == TF_INITIALIZERS:
        return
    roots = ("keras", "tf_keras") if legacy else ("keras",)
    if module is not None and module.split(".")[0] not in roots:
        raise ModelError(
            f"{where}.module: module {module!r} is not Keras; only built-in Keras objects "
            "are allowed"
        )
    if module is not None and not _keras_module(module):
        raise ModelError(
            f"{where}.module: {module!r} is not an allowed Keras package; only built-in "
            "Keras layers, initializers, regularizers, constraints and activations are allowed"
        )


def _check_tf_op(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """A tf.keras TFOpLambda must name one of TF_OPS; returned without that name, which the
    generic checks refuse as code, for the checks of everything else it holds."""
    conf = obj.get("config")
    conf = conf if isinstance(conf, dict) else {}
    function = conf.get("function")
    if not isinstance(function, str) or function not in TF_OPS:
        raise ModelError(
            f"{where}.config.function: the TensorFlow function {str(function)[:60]!r} "
            "(a TFOpLambda layer) is code outside Keras; only +, -, * and / on tensors "
            "convert. Build the model from keras.layers (Add, Multiply, Activation...) instead"
        )
    _check_module(obj.get("module"), where, legacy=True)
    if obj.get("registered_name") not in (None, TF_OP):
        raise ModelError(
            f"{where}: registered custom object {obj['registered_name']!r} is not allowed"
        )
    return {**obj, "config": {k: v for k, v in conf.items() if k != "function"}}


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
