"""tf.keras 2.x model JSON rewritten into Keras 3's form, by rules read off Keras 3 itself.

tf.keras 2.4-2.21 and Keras 3 differ in ways that follow a few rules, applied everywhere in the
JSON rather than per layer: options are kept when the Keras 3 class reads them (its __init__
parameters, and the legacy names Keras 3 itself pops from **kwargs), one-element lists become
the int an int option wants, names lose the '/' Keras 3 refuses (in every reference too), dtype
policies become their name, calls ([[layer, node, tensor, kwargs]]) become Keras 3 nodes
(tensors in keyword arguments too), node numbers of nested models count from 0 as in Keras 3,
Python arithmetic tf.keras recorded as TFOpLambda becomes the Keras layer that computes it, and
the layers of Keras's own applications (ConvNeXt's LayerScale) move to their Keras 3 module. The
result is pure data, checked again by the allowlist before Keras reads it.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import logging
import re
from collections import Counter
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from trainer.errors import ModelError
from trainer.modeljson import (
    LAYER_KEYS,
    MODEL_CLASSES,
    POLICY_CLASSES,
    TF_OP,
    TF_OPS,
    application_layer,
)

log = logging.getLogger(__name__)

Json = dict[str, Any]
PACKAGES = ("layers", "initializers", "regularizers", "constraints")
SUFFIX_PACKAGES = {
    "_initializer": "initializers",
    "_regularizer": "regularizers",
    "_constraint": "constraints",
}
KWARGS_READ = re.compile(r"kwargs\.(?:pop|get)\(\s*[\"'](\w+)[\"']")
CONSTANT = "_CONSTANT_VALUE"  # tf.keras's marker for a non-tensor first argument
NO_DEFAULT = object()
# Options dropped during one conversion that had a value; logged once at its end.
DROPPED: ContextVar[Counter[str]] = ContextVar("dropped")


@dataclass
class Scope:
    """One model's layer names: their Keras 3 spelling and which count nodes from 1."""

    names: set[str] = field(default_factory=set)
    renamed: dict[str, str] = field(default_factory=dict)
    from_one: set[str] = field(default_factory=set)
    functional: set[str] = field(default_factory=set)

    def name(self, old: str) -> str:
        """The Keras 3 name of a layer of this model."""
        return self.renamed.get(old, old)


def convert_legacy(config: Json) -> Json:
    """Rewrite tf.keras 2.x JSON into the Keras 3 form that deserialisation accepts."""
    dropped: Counter[str] = Counter()
    token = DROPPED.set(dropped)
    try:
        converted = _model(copy.deepcopy(config), "model")
    finally:
        DROPPED.reset(token)
    if dropped:
        listed = ", ".join(f"{k} (x{n})" for k, n in sorted(dropped.items()))
        log.warning("model: tf.keras options Keras 3 does not have were dropped: %s", listed)
    return converted


def _model(obj: Json, where: str) -> Json:
    """A Sequential or functional model: its layers, then the wiring between them."""
    inner = obj.get("config") or {}
    layers = inner.get("layers", [])
    scope = _scope(layers)
    converted = [_layer(x, f"{where}.config.layers[{i}]", scope) for i, x in enumerate(layers)]
    conf: Json = {k: inner[k] for k in ("name", "trainable") if k in inner}
    conf["name"] = _plain_name(conf.get("name", "model"))
    if obj.get("class_name") == "Sequential":
        conf["layers"] = _sequential_input(layers, converted)
        if "build_input_shape" in inner:
            conf["build_input_shape"] = inner["build_input_shape"]
        return {"module": "keras", "class_name": "Sequential", "config": conf}
    conf["layers"] = converted
    for key in ("input_layers", "output_layers"):
        conf[key] = _outputs(inner.get(key, []), scope)
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": conf,
        "registered_name": "Functional",
    }


def _scope(layers: list[Json]) -> Scope:
    """Keras 3 refuses '/' in names: such a name gets '_', kept unique within the model."""
    scope = Scope(names={_name(x) for x in layers})
    taken = set(scope.names)
    for layer in layers:
        old = _name(layer)
        if _counts_from_one(layer):
            scope.from_one.add(old)
        if layer.get("class_name") in MODEL_CLASSES - {"Sequential"}:
            scope.functional.add(old)
        if "/" not in old:
            continue
        new = base = old.replace("/", "_")
        suffix = 0
        while new in taken:
            suffix += 1
            new = f"{base}_{suffix}"
        taken.add(new)
        scope.renamed[old] = new
    return scope


def _name(layer: Json) -> str:
    name = layer.get("name", layer.get("config", {}).get("name", ""))
    return name if isinstance(name, str) else ""


def _plain_name(name: Any) -> Any:
    return name.replace("/", "_") if isinstance(name, str) else name


def _counts_from_one(layer: Json) -> bool:
    """tf.keras numbers the calls of a nested model that has an input from 1 (its node 0 is
    the model's own input-to-output node); Keras 3 numbers them from 0."""
    if layer.get("class_name") not in MODEL_CLASSES:
        return False
    inner = layer.get("config", {}).get("layers") or [{}]
    first = inner[0]
    return first.get("class_name") == "InputLayer" or "batch_input_shape" in first.get("config", {})


def _sequential_input(original: list[Json], layers: list[Json]) -> list[Json]:
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
            "name": f"{_plain_name(first.get('name', 'input'))}_input",
        },
    }
    return [head, *layers]


def _layer(layer: Json, where: str, scope: Scope | None) -> Json:
    """One layer; in a model (scope given) with its name and calls in Keras 3's form."""
    kind = layer.get("class_name")
    if kind in MODEL_CLASSES:
        out = _model(layer, where)
    elif kind == TF_OP and scope is not None:
        return _tf_op(layer, where, scope)
    else:
        out = _object(layer, "layers", where)
    conf = out.get("config")
    if isinstance(conf, dict) and "name" in conf:
        conf["name"] = scope.name(conf["name"]) if scope else _plain_name(conf["name"])
    if scope is not None:
        out["name"] = scope.name(_name(layer))
        nodes = layer.get("inbound_nodes", [])
        out["inbound_nodes"] = [_node(n, scope) for n in nodes]
    return out


def _object(obj: Json, package: str, where: str) -> Json:
    """A Keras object (layer, initializer, regularizer, constraint) and its options."""
    name = obj.get("class_name")
    own = application_layer(obj.get("module"), name, legacy=True)
    package = _package(name, package)
    cls = own or _keras_class(package, name)
    conf = obj.get("config")
    if isinstance(conf, dict):
        conf = _options(cls, conf, f"{where}.config")
    return {
        "module": own.__module__ if own else f"keras.{package}",
        "class_name": name,
        "config": conf,
        "registered_name": None,
    }


def _package(name: Any, preferred: str) -> str:
    """Where Keras 3 keeps the class: the package the key suggests, else the first that has it."""
    for package in (preferred, *PACKAGES):
        if isinstance(name, str) and _keras_class(package, name) is not None:
            return package
    return preferred


@cache
def _keras_class(package: str, name: str) -> type | None:
    import keras

    found = getattr(getattr(keras, package), name, None)
    return found if isinstance(found, type) else None


def _options(cls: type | None, conf: Json, where: str) -> Json:
    """The options Keras 3 reads, converted; the rest dropped (logged when they were set)."""
    if cls is not None and cls.__name__ == "InputLayer" and "batch_input_shape" in conf:
        conf.setdefault("batch_shape", conf.pop("batch_input_shape"))
        conf.pop("input_shape", None)
    read = read_options(cls) if cls is not None else None
    out: Json = {}
    for key, value in conf.items():
        value = _value(key, value, f"{where}.{key}")
        if read is None or key in read:
            out[key] = _as_int(cls, key, value)
        elif not _changes_nothing(cls, key, value):
            shown = f"={value!r}" if isinstance(value, (bool, int, float, str)) else ""
            DROPPED.get(Counter())[f"{cls.__name__ if cls else '?'}.{key}{shown}"[:80]] += 1
    return out


@cache
def read_options(cls: type) -> frozenset[str]:
    """Options a Keras 3 class reads: __init__ parameters up the class chain while **kwargs
    is passed on, and the legacy names Keras pops from **kwargs (`implementation`, `alpha`)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = inspect.signature(init).parameters.values()
        names.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        with contextlib.suppress(OSError, TypeError):  # no source: the signature alone
            names.update(KWARGS_READ.findall(inspect.getsource(init)))
        if not any(p.kind == p.VAR_KEYWORD for p in params):
            break
    return frozenset(names - {"self"})


def _changes_nothing(cls: type | None, key: str, value: Any) -> bool:
    """Unset (null, false, empty), the default Keras 3 gives that option in the same family
    of layers (`groups=1` on a depthwise convolution), a build-time shape hint
    (`query_shape`), or `trainable` on a class that takes none (such have no weights)."""
    if value is None or value is False or value in ([], {}, ""):
        return True
    if key.endswith("_shape") or key == "trainable":
        return True
    default = _family_default(cls.__module__.rsplit(".", 1)[0], key) if cls else NO_DEFAULT
    return type(default) is type(value) and default == value


@cache
def _family_default(family: str, key: str) -> Any:
    """The one default of option `key` among the Keras 3 layers of source package `family`
    (keras.src.layers.convolutional...); NO_DEFAULT when none or several."""
    import keras

    found: list[Any] = []
    for name in dir(keras.layers):
        cls = getattr(keras.layers, name)
        if not isinstance(cls, type) or not cls.__module__.startswith(family + "."):
            continue
        init = cls.__dict__.get("__init__")
        param = inspect.signature(init).parameters.get(key) if init else None
        if param is not None and param.default is not param.empty and param.default not in found:
            found.append(param.default)
    return found[0] if len(found) == 1 else NO_DEFAULT


def _as_int(cls: type | None, key: str, value: Any) -> Any:
    """tf.keras writes some int options as one-element lists (BatchNormalization axis [3])."""
    if cls is None or not (isinstance(value, list) and len(value) == 1):
        return value
    param = inspect.signature(cls).parameters.get(key)
    default = param.default if param is not None else None
    is_int = isinstance(default, int) and not isinstance(default, bool)
    return value[0] if is_int and isinstance(value[0], int) else value


def _value(key: str, value: Any, where: str) -> Any:
    """An option's value: dtype policies, nested objects and lists of layers converted."""
    if key == "dtype":
        return _dtype(value)
    if isinstance(value, dict) and "class_name" in value:
        if key in LAYER_KEYS:
            return _layer(value, where, None)
        package = next((p for s, p in SUFFIX_PACKAGES.items() if key.endswith(s)), "layers")
        return _object(value, package, where)
    if key in LAYER_KEYS and isinstance(value, list):
        return [
            _layer(v, f"{where}[{i}]", None) if isinstance(v, dict) else v
            for i, v in enumerate(value)
        ]
    return value


def _dtype(value: Any) -> Any:
    """tf.keras writes mixed-precision policies as objects; Keras 3 accepts their name."""
    if isinstance(value, dict) and value.get("class_name") in POLICY_CLASSES:
        return value.get("config", {}).get("name", "float32")
    return value


def _is_ref(value: Any) -> bool:
    """[layer, node, tensor] or [layer, node, tensor, kwargs]: one tensor of a legacy call."""
    return (
        isinstance(value, list)
        and len(value) in (3, 4)
        and isinstance(value[0], str)
        and isinstance(value[1], int)
        and isinstance(value[2], int)
    )


def _node(node: Any, scope: Scope) -> Json:
    """A legacy call as Keras 3 writes it: {"args": [inputs], "kwargs": {...}}."""
    kwargs: Json = {}

    def first_arg(value: Any) -> Any:
        if _is_ref(value):
            if len(value) == 4 and isinstance(value[3], dict):
                kwargs.update(value[3])
            return value[2] if value[0] == CONSTANT else _tensor(value, scope)
        if isinstance(value, list):
            return [first_arg(v) for v in value]
        if isinstance(value, dict):
            return {k: first_arg(v) for k, v in value.items()}
        return value

    inputs = first_arg(node)
    if isinstance(node, list) and not _is_ref(node) and len(inputs) == 1:
        inputs = inputs[0]  # a layer called on one tensor, written as a list of one
    return {"args": [inputs], "kwargs": {k: _kwarg(v, scope) for k, v in kwargs.items()}}


def _kwarg(value: Any, scope: Scope) -> Any:
    """Tensors among keyword arguments (MultiHeadAttention's value) are [layer, node, tensor]."""
    if _is_ref(value) and len(value) == 3 and value[0] in scope.names:
        return _tensor(value, scope)
    if isinstance(value, list):
        return [_kwarg(v, scope) for v in value]
    if isinstance(value, dict):
        return {k: _kwarg(v, scope) for k, v in value.items()}
    return value


def _tensor(ref: list[Any], scope: Scope) -> Json:
    """Keras 3's placeholder for a layer's output; Keras swaps in the real tensor by history."""
    name, index, tensor = ref[:3]
    index -= 1 if name in scope.from_one else 0
    history = [scope.name(name), index, tensor]
    return {
        "class_name": "__keras_tensor__",
        "config": {"shape": [], "dtype": "float32", "keras_history": history},
    }


def _outputs(refs: Any, scope: Scope) -> Any:
    """input_layers/output_layers; a list of one [layer, node, tensor] unwrapped, as Keras 3
    writes a single input or output."""
    mapped = _output(refs, scope)
    single = isinstance(refs, list) and len(refs) == 1 and _is_ref(refs[0])
    return mapped[0] if single else mapped


def _output(refs: Any, scope: Scope) -> Any:
    """Here (and only here) Keras 3 counts a nested functional model's nodes from 1."""
    if _is_ref(refs):
        name, index, tensor = refs[:3]
        index -= 1 if name in scope.from_one else 0
        index += 1 if name in scope.functional else 0
        return [scope.name(name), index, tensor]
    if isinstance(refs, list):
        return [_output(r, scope) for r in refs]
    if isinstance(refs, dict):
        return {k: _output(v, scope) for k, v in refs.items()}
    return refs


def _tf_op(layer: Json, where: str, scope: Scope) -> Json:
    """tf.keras's record of `a + b`, `x * 0.5`...: the Keras layer that computes the same."""
    conf = layer.get("config", {})
    function = conf.get("function")
    x, y = _operands(layer, function, where, scope)
    base = {
        "name": scope.name(_name(layer)),
        "trainable": conf.get("trainable", True),
        "dtype": _dtype(conf.get("dtype")),
    }
    if _is_tensor(x) and _is_tensor(y):
        merge = TF_OPS[function]
        if merge is None:
            raise ModelError(
                f"{where}: dividing one tensor by another has no built-in Keras layer; "
                "divide by a number, or use keras.layers that compute it"
            )
        return _made_layer(merge, base, [x, y])
    scale, offset, tensor = _affine(function, x, y, where)
    return _made_layer("Rescaling", base | {"scale": scale, "offset": offset}, tensor)


def _operands(layer: Json, function: Any, where: str, scope: Scope) -> tuple[Any, Any]:
    """The two operands of the op's one call: its first argument and `y`."""
    nodes = layer.get("inbound_nodes", [])
    if len(nodes) != 1:
        raise ModelError(f"{where}.inbound_nodes: a TensorFlow op is applied exactly once")
    node = _node(nodes[0], scope)
    kwargs = {k: v for k, v in node["kwargs"].items() if k != "name"}
    x, y = node["args"][0], kwargs.pop("y", None)
    if kwargs or x is None or y is None:
        raise ModelError(
            f"{where}: the TensorFlow op {function!r} takes two operands here; only "
            "`a + b`, `a - b`, `a * b` and `a / number` convert to Keras layers"
        )
    return x, y


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _affine(function: str, x: Any, y: Any, where: str) -> tuple[float, float, Json]:
    """(scale, offset, tensor) for a tensor and a number in either order."""
    number, tensor = (y, x) if _is_tensor(x) else (x, y)
    if not (_is_number(number) and _is_tensor(tensor)):
        raise ModelError(
            f"{where}: the TensorFlow op {function!r} mixes a tensor with {number!r}; only "
            "single numbers convert (Keras Rescaling): use keras.layers for the rest"
        )
    reversed_ = not _is_tensor(x)
    merge = TF_OPS[function]
    if merge == "Add":
        return 1.0, float(number), tensor
    if merge == "Multiply":
        return float(number), 0.0, tensor
    if merge == "Subtract":
        return (-1.0, float(number), tensor) if reversed_ else (1.0, -float(number), tensor)
    if reversed_ or number == 0:
        raise ModelError(
            f"{where}: dividing by a tensor (or by zero) has no built-in Keras layer; "
            "divide a tensor by a non-zero number instead"
        )
    return 1.0 / float(number), 0.0, tensor


def _made_layer(class_name: str, conf: Json, inputs: Any) -> Json:
    """A built-in layer in a functional model, called once on `inputs`."""
    return {
        "module": "keras.layers",
        "class_name": class_name,
        "config": conf,
        "registered_name": None,
        "name": conf["name"],
        "inbound_nodes": [{"args": [inputs], "kwargs": {}}],
    }
