"""Hostile model JSON: code, foreign modules, files, URLs and allocation bombs are refused.

Every case goes through `load_model`, the trainer's only way from user JSON to a model, and
expects a ModelError that names where in the JSON the problem is and what to do instead.
"""

from __future__ import annotations

import base64
import json
import marshal
import resource
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pytest

from orchestrator.experiments import parse_experiment
from orchestrator.settings import OrchestratorError
from schemas.commands import CreateCommand
from trainer.errors import ModelError
from trainer.model import load_model
from trainer.runner import read_spec

Json = dict[str, Any]
MAX_PARAMS = 10_000_000


def layer(class_name: str, module: str = "keras.layers", **config: Any) -> Json:
    """One Keras 3 layer entry."""
    return {"module": module, "class_name": class_name, "registered_name": None, "config": config}


def sequential(*layers: Json, shape: tuple[int | None, ...] = (None, 4)) -> Json:
    """A Keras 3 Sequential JSON starting with an InputLayer of `shape`."""
    head = layer("InputLayer", batch_shape=list(shape), dtype="float32", name="inputs")
    return {
        "module": "keras",
        "class_name": "Sequential",
        "registered_name": None,
        "config": {"name": "hostile", "layers": [head, *layers]},
    }


def dense(units: Any = 3, **config: Any) -> Json:
    return layer("Dense", name="dense", units=units, **config)


def _touch(canary: Path) -> Callable[[Any], Any]:
    """A function that creates the canary; the path is a constant inside its bytecode."""
    fn: Callable[[Any], Any] = eval(f"lambda t: (open({str(canary)!r}, 'w').close(), t)[1]")
    return fn


def keras3_lambda(canary: Path) -> Json:
    """model.to_json() of a Keras 3 Sequential whose Lambda creates the canary file."""
    model = keras.Sequential([keras.Input((4,)), keras.layers.Lambda(_touch(canary))])
    canary.unlink(missing_ok=True)  # building the model here ran it once; start clean
    return json.loads(model.to_json())


def keras3_lambda_layer(canary: Path) -> Json:
    return keras3_lambda(canary)["config"]["layers"][1]


def functional_lambda(canary: Path) -> Json:
    inputs = keras.Input((4,))
    outputs = keras.layers.Dense(2)(keras.layers.Lambda(_touch(canary))(inputs))
    config = json.loads(keras.Model(inputs, outputs).to_json())
    canary.unlink(missing_ok=True)
    return config


def legacy_lambda(canary: Path) -> Json:
    """tf.keras 2.x form: marshalled bytecode in config.function, no `module` keys."""
    code = marshal.dumps(_touch(canary).__code__)
    return {
        "class_name": "Sequential",
        "keras_version": "2.4.0",
        "config": {
            "name": "legacy",
            "layers": [
                {
                    "class_name": "Lambda",
                    "config": {
                        "name": "evil",
                        "batch_input_shape": [None, 4],
                        "function": [base64.b64encode(code).decode(), None, None],
                        "function_type": "lambda",
                        "module": "__main__",
                    },
                }
            ],
        },
    }


def wrapped(canary: Path, wrapper: str, key: str) -> Json:
    outer = layer(wrapper, name="wrap")
    outer["config"][key] = keras3_lambda_layer(canary)
    return sequential(outer, shape=(None, 2, 4))


def nested_model(canary: Path) -> Json:
    inner = keras3_lambda(canary)
    return sequential(dense(), inner)


def function_object(module: str, name: str) -> Json:
    return {"module": module, "class_name": "function", "config": name, "registered_name": name}


def keras_op(module: str, class_name: str, registered: str | None = None) -> Json:
    """model.to_json() of `inputs + 1.0` (a keras.ops node), that node made another object."""
    inputs = keras.Input((4,))
    config: Json = json.loads(keras.Model(inputs, inputs + 1.0).to_json())
    node = config["config"]["layers"][1]
    node.update(module=module, class_name=class_name, registered_name=registered or class_name)
    return config


def application_layer(module: str, class_name: str, registered: str | None = None) -> Json:
    """ConvNeXt's LayerScale as Keras 3 writes it, under another module or class name."""
    return sequential(
        layer(class_name, module, name="scale", init_values=1e-6, projection_dim=4)
        | {"registered_name": registered or class_name}
    )


def legacy_application_layer(module: str | None, class_name: str) -> Json:
    """A tf.keras 2 Sequential whose layer claims to come from a tf_keras application."""
    scale = {
        "class_name": class_name,
        "config": {"name": "scale", "batch_input_shape": [None, 4], "scale": 0.5},
    }
    if module is not None:
        scale["module"] = module
    return {"class_name": "Sequential", "keras_version": "2.15.0", "config": {"layers": [scale]}}


def broadcast_bomb(side: int) -> Json:
    """`a + b` of a (1, side) and a (side, 1) input: side * side values per sample."""
    a, b = keras.Input((1, side)), keras.Input((side, 1))
    return json.loads(keras.Model([a, b], a + b).to_json())


# (id, builder(canary) -> model JSON, regex the message must match)
CASES: list[tuple[str, Callable[[Path], Any], str]] = [
    ("keras3-lambda", keras3_lambda, r"layers\[1\].*Lambda.*not an allowed.*built-in Keras"),
    ("keras3-lambda-functional", functional_lambda, r"Lambda.*not an allowed"),
    (
        "legacy-lambda",
        legacy_lambda,
        r"layers\[0\]: 'Lambda' is not an allowed built-in Keras layer",
    ),
    (
        "lambda-in-timedistributed",
        lambda c: wrapped(c, "TimeDistributed", "layer"),
        r"config\.layer.*Lambda",
    ),
    (
        "lambda-in-bidirectional",
        lambda c: wrapped(c, "Bidirectional", "forward_layer"),
        r"forward_layer.*Lambda",
    ),
    ("lambda-in-rnn-cell", lambda c: wrapped(c, "RNN", "cell"), r"config\.cell.*Lambda"),
    ("lambda-in-nested-model", nested_model, r"layers\[2\]\.config\.layers\[1\].*Lambda"),
    (
        "lambda-as-activation",
        lambda c: sequential(dense(activation=keras3_lambda_layer(c)["config"]["function"])),
        r"activation: Python code in a model \(Lambda\) is not allowed; use built-in",
    ),
    (
        "module-os",
        lambda c: sequential(layer("Dense", module="os", name="d", units=2)),
        r"layers\[1\]\.module: module 'os' is not Keras",
    ),
    (
        "module-builtins-eval",
        lambda c: sequential(dense(activation=function_object("builtins", "eval"))),
        r"activation\.module: module 'builtins' is not Keras",
    ),
    (
        "module-keras-utils-get-file",
        lambda c: sequential(dense(activation=function_object("keras.src.utils", "get_file"))),
        r"activation\.module: 'keras\.src\.utils' is not an allowed Keras package",
    ),
    (
        "module-keras-config-unsafe",
        lambda c: sequential(
            dense(activation=function_object("keras.config", "enable_unsafe_deserialization"))
        ),
        r"'keras\.config' is not an allowed Keras package",
    ),
    (
        "registered-custom-object",
        lambda c: sequential(dense() | {"registered_name": "Custom>Dense"}),
        r"layers\[1\]: registered custom object 'Custom>Dense' is not allowed",
    ),
    (
        "custom-activation-function",
        lambda c: sequential(dense(activation=function_object("keras.activations", "my_evil"))),
        r"activation: unknown activation 'my_evil'; use a Keras built-in such as 'relu'",
    ),
    (
        "safe-mode-false-in-layer",
        lambda c: sequential(dense(safe_mode=False)),
        r"config\.safe_mode: 'safe_mode' is not allowed.*remove it",
    ),
    (
        "enable-unsafe-deserialization-key",
        lambda c: sequential(dense()) | {"enable_unsafe_deserialization": True},
        r"model\.enable_unsafe_deserialization: .* is not allowed",
    ),
    (
        "url-as-initializer",
        lambda c: sequential(dense(kernel_initializer="https://evil.example/init.h5")),
        r"kernel_initializer: strings that are paths or URLs are not allowed",
    ),
    (
        "filepath-key",
        lambda c: sequential(dense(filepath="/tmp/weights.h5")),
        r"config\.filepath: 'filepath' is not allowed",
    ),
    (
        "weights-key",
        lambda c: sequential(dense(weights=[[0.0] * 3] * 4)),
        r"config\.weights: 'weights' is not allowed",
    ),
    (
        "path-in-a-name",
        lambda c: sequential(layer("Dense", name="../../etc/passwd", units=2)),
        r"config\.name: strings that are paths or URLs are not allowed",
    ),
    (
        "tfsm-layer-loads-a-file",
        lambda c: sequential(layer("TFSMLayer", name="saved", filepath="model_dir")),
        r"filepath|'TFSMLayer' is not an allowed",
    ),
    (
        "string-lookup-vocabulary-file",
        lambda c: sequential(layer("StringLookup", name="lookup", vocabulary="vocab.txt")),
        r"'StringLookup' is not an allowed",
    ),
    (
        "unknown-layer-class",
        lambda c: sequential(layer("EvilLayer", name="x")),
        r"layers\[1\]: 'EvilLayer' is not an allowed built-in Keras layer",
    ),
    (
        "string-typed-units",
        lambda c: sequential(dense(units="64")),
        r"config\.units: expected a whole number, got '64'; write sizes as plain integers",
    ),
    (
        "string-typed-rate",
        lambda c: sequential(layer("Dropout", name="drop", rate="0.5")),
        r"config\.rate: the number '0\.5' is written as a string; write it without quotes",
    ),
    (
        "nan-units",
        lambda c: sequential(dense(units=float("nan"))),
        r"config\.units: expected a whole number, got nan",
    ),
    (
        "infinite-float",
        lambda c: sequential(layer("Dropout", name="drop", rate=float("inf"))),
        r"config\.rate: inf is not a finite number",
    ),
    (
        "huge-integer-units",
        lambda c: sequential(dense(units=10**12)),
        r"config\.units: 1000000000000 is too large \(limit 100000000\)",
    ),
    (
        "huge-integer-in-a-list",
        lambda c: sequential(layer("ZeroPadding1D", name="pad", padding=[10**12, 1])),
        r"padding\[0\]: 1000000000000 is too large",
    ),
    # Keras's own application layers are allowed by exact module and class, nothing near them
    (
        "application-module-imported-base-layer",
        lambda c: application_layer("keras.src.applications.convnext", "Layer"),
        r"'keras\.src\.applications\.convnext' is not an allowed Keras package",
    ),
    (
        "application-module-builder-function",
        lambda c: application_layer("keras.src.applications.convnext", "ConvNeXtTiny"),
        r"'keras\.src\.applications\.convnext' is not an allowed Keras package",
    ),
    (
        "application-module-made-up",
        lambda c: application_layer("keras.src.applications.foo", "LayerScale"),
        r"'keras\.src\.applications\.foo' is not an allowed Keras package",
    ),
    (
        "application-layer-in-another-application",
        lambda c: application_layer("keras.src.applications.resnet", "LayerScale"),
        r"'keras\.src\.applications\.resnet' is not an allowed Keras package",
    ),
    (
        "application-layer-public-module",
        lambda c: application_layer("keras.applications.convnext", "LayerScale"),
        r"'keras\.applications\.convnext' is not an allowed Keras package",
    ),
    (
        "application-layer-name-under-keras-utils",
        lambda c: application_layer("keras.src.utils", "LayerScale"),
        r"'keras\.src\.utils' is not an allowed Keras package",
    ),
    (
        "application-layer-registered-custom-object",
        lambda c: application_layer(
            "keras.src.applications.convnext", "LayerScale", "Custom>LayerScale"
        ),
        r"registered custom object 'Custom>LayerScale' is not allowed",
    ),
    (
        "application-layer-without-module-in-keras-3-json",
        lambda c: sequential({"class_name": "LayerScale", "config": {"name": "s"}}),
        r"'LayerScale' is not an allowed built-in Keras layer",
    ),
    (
        "legacy-application-module-imported-base-layer",
        lambda c: legacy_application_layer("tf_keras.src.applications.convnext", "Layer"),
        r"'tf_keras\.src\.applications\.convnext' is not an allowed Keras package",
    ),
    (
        "legacy-application-layer-foreign-module",
        lambda c: legacy_application_layer("evil.applications.convnext", "LayerScale"),
        r"module 'evil\.applications\.convnext' is not Keras",
    ),
    (
        "lambda-in-application-module",
        lambda c: application_layer("keras.src.applications.convnext", "Lambda"),
        r"'keras\.src\.applications\.convnext' is not an allowed Keras package",
    ),
    # keras.ops nodes: elementwise arithmetic only, as a node of a functional model
    (
        "op-cond-takes-functions",
        lambda c: keras_op("keras.src.ops.core", "Cond"),
        r"layers\[1\]: the operation keras\.src\.ops\.core\.Cond is not allowed",
    ),
    (
        "op-while-loop",
        lambda c: keras_op("keras.src.ops.core", "WhileLoop"),
        r"operation keras\.src\.ops\.core\.WhileLoop is not allowed",
    ),
    (
        "op-custom-gradient",
        lambda c: keras_op("keras.src.ops.core", "custom_gradient"),
        r"operation keras\.src\.ops\.core\.custom_gradient is not allowed",
    ),
    (
        "op-sizes-itself-from-arguments",
        lambda c: keras_op("keras.src.ops.numpy", "Tile"),
        r"operation keras\.src\.ops\.numpy\.Tile is not allowed",
    ),
    (
        "op-image-resize",
        lambda c: keras_op("keras.src.ops.image", "Resize"),
        r"operation keras\.src\.ops\.image\.Resize is not allowed",
    ),
    (
        "op-function-wraps-a-graph",
        lambda c: keras_op("keras.src.ops.function", "Function"),
        r"operation keras\.src\.ops\.function\.Function is not allowed",
    ),
    (
        "op-allowed-name-in-another-ops-module",
        lambda c: keras_op("keras.src.ops.nn", "Add"),
        r"operation keras\.src\.ops\.nn\.Add is not allowed",
    ),
    (
        "op-public-ops-module",
        lambda c: keras_op("keras.ops", "add"),
        r"'keras\.ops' is not an allowed Keras package",
    ),
    (
        "op-registered-custom-object",
        lambda c: keras_op("keras.src.ops.numpy", "Add", "Custom>Add"),
        r"registered custom object 'Custom>Add' is not allowed",
    ),
    (
        "op-as-an-initializer",
        lambda c: sequential(
            dense(kernel_initializer=layer("Add", "keras.src.ops.numpy") | {"config": {}})
        ),
        r"kernel_initializer: the operation keras\.src\.ops\.numpy\.Add can only be a node",
    ),
    (
        "op-in-tf-keras-json",
        lambda c: legacy_application_layer("keras.src.ops.numpy", "Add"),
        r"'keras\.src\.ops\.numpy' is not an allowed Keras package",
    ),
    (
        "op-broadcast-output-bomb",
        lambda c: broadcast_bomb(10_000),
        r"layer 'add(_\d+)?' outputs 100000000 values per sample",
    ),
    ("top-level-list", lambda c: [sequential()], r"top level must be a Keras Sequential"),
    ("top-level-string", lambda c: "Sequential", r"top level must be a Keras Sequential"),
    ("top-level-null", lambda c: None, r"top level must be a Keras Sequential"),
    ("class-name-not-a-string", lambda c: {"class_name": {"x": 1}}, r"top level must be"),
    (
        "layer-class-name-a-list",
        lambda c: sequential({"class_name": ["Dense"], "config": {}}),
        r"layers\[1\]: each layer must be an object with a class_name",
    ),
    (
        "legacy-layers-not-objects",
        lambda c: {"class_name": "Sequential", "config": {"layers": ["Dense", 3]}},
        r"layers\[0\]: each layer must be an object with a class_name",
    ),
    (
        "config-not-an-object",
        lambda c: {"class_name": "Sequential", "config": "x"},
        r"model\.config: must be an object",
    ),
]


@pytest.mark.parametrize(("build", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_it_refuses_hostile_model_json(
    build: Callable[[Path], Any], message: str, canary: Path
) -> None:
    config = build(canary)
    with pytest.raises(ModelError, match=message):
        load_model(config, MAX_PARAMS)
    assert not canary.exists()


def nested(depth: int) -> Json:
    value: Json = {"class_name": "GlorotUniform", "config": {}}
    for _ in range(depth):
        value = {"seed_of": value}
    return value


def test_it_refuses_a_recursion_bomb_without_recursing(canary: Path) -> None:
    config = sequential(dense(kernel_initializer=nested(200_000)))
    with pytest.raises(ModelError, match="nested deeper than 64 levels"):
        load_model(config, MAX_PARAMS)


@pytest.mark.parametrize(
    "text",
    ['{"model": ', "[" * 100_000 + "]" * 100_000, '{"model": NaN, "config": {"a": [}'],
    ids=["truncated", "deeply-nested-text", "garbage"],
)
def test_it_refuses_a_malformed_run_file_with_a_message(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(Exception, match=r"run\.json: invalid run specification") as caught:
        read_spec(tmp_path)
    assert type(caught.value).__name__ == "SpecError"


def peak_rss_mib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


BOMBS = [
    ("dense-1e6-by-1e3", sequential(dense(units=1_000_000), shape=(None, 1000)), "1001000000"),
    (
        "embedding-huge-input-dim",
        sequential(layer("Embedding", name="emb", input_dim=10**8, output_dim=10), shape=(None, 1)),
        "1000000000",
    ),
    (
        "conv-huge-filters",
        sequential(
            layer("Conv2D", name="conv", filters=100_000, kernel_size=[10, 10]),
            shape=(None, 16, 16, 1_000),
        ),
        r"\d{10,}",
    ),
]


@pytest.mark.parametrize(("config", "count"), [b[1:] for b in BOMBS], ids=[b[0] for b in BOMBS])
def test_it_refuses_a_billion_parameters_before_allocating(config: Json, count: str) -> None:
    before = peak_rss_mib()
    with pytest.raises(ModelError, match=rf"{count} parameters exceed the limit.*before building"):
        load_model(config, 50_000_000)
    assert peak_rss_mib() - before < 1024, "the weights were allocated before the refusal"


def test_it_refuses_a_layer_output_bomb_before_allocating() -> None:
    config = sequential(layer("RepeatVector", name="repeat", n=10**8), shape=(None, 100))
    before = peak_rss_mib()
    with pytest.raises(ModelError, match=r"layer 'repeat' outputs 10000000000 values per sample"):
        load_model(config, 50_000_000)
    assert peak_rss_mib() - before < 1024


# The model as it arrives in a `create` command from any Kafka client (a string or an object).
COMMAND_MODELS: list[tuple[str, Any, str]] = [
    ("truncated-json-text", '{"class_name": "Sequential", "config": {', r"model: not valid JSON"),
    ("nested-json-text", "[" * 100_000 + "]" * 100_000, r"model: not valid JSON \(RecursionError"),
    ("nan-literal-text", '{"class_name": NaN', r"model: not valid JSON"),
    ("a-list", [sequential()], r"model: the Keras model JSON is required \(an object\)"),
    ("a-number", 1e9, r"model: the Keras model JSON is required"),
    ("missing", None, r"model: the Keras model JSON is required"),
]


@pytest.mark.parametrize(
    ("model", "message"), [c[1:] for c in COMMAND_MODELS], ids=[c[0] for c in COMMAND_MODELS]
)
def test_the_orchestrator_refuses_a_malformed_model_in_a_create_command(
    model: Any, message: str
) -> None:
    experiment: Json = {"dataset_train": "stored:" + "0" * 64 + ".csv"}
    if model is not None:
        experiment["model"] = model
    command = CreateCommand(experiment_id=uuid.uuid4(), issued_by="mallory", experiment=experiment)
    with pytest.raises(OrchestratorError, match=message):
        parse_experiment(command)
