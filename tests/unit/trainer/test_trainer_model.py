"""Model JSON: Keras 3 and tf.keras 2.x both load; anything beyond built-in Keras is refused."""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

import keras
import numpy as np
import pytest

from trainer.demo import demo_model
from trainer.errors import ModelError
from trainer.model import load_model

pytestmark = pytest.mark.unit


def dense(name: str, units: int, activation: str) -> dict[str, Any]:
    return {
        "class_name": "Dense",
        "config": {
            "name": name,
            "trainable": True,
            "dtype": "float32",
            "units": units,
            "activation": activation,
            "use_bias": True,
            "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
            "bias_initializer": {"class_name": "Zeros", "config": {}},
            "kernel_regularizer": None,
            "bias_regularizer": None,
            "activity_regularizer": None,
            "kernel_constraint": None,
            "bias_constraint": None,
        },
    }


# Appendix D of the seed report, as tf.keras 2.4 wrote it.
APPENDIX_D = {
    "class_name": "Sequential",
    "config": {
        "name": "sequential_2",
        "layers": [
            {
                "class_name": "InputLayer",
                "config": {
                    "batch_input_shape": [None, 28, 28],
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "flatten_2_input",
                },
            },
            {
                "class_name": "Flatten",
                "config": {
                    "name": "flatten_2",
                    "trainable": True,
                    "batch_input_shape": [None, 28, 28],
                    "dtype": "float32",
                    "data_format": "channels_last",
                },
            },
            dense("dense_4", 128, "relu"),
            dense("dense_5", 10, "linear"),
        ],
    },
    "keras_version": "2.4.0",
    "backend": "tensorflow",
}

LEGACY_FUNCTIONAL = {
    "class_name": "Functional",
    "config": {
        "name": "model",
        "layers": [
            {
                "class_name": "InputLayer",
                "name": "input_1",
                "inbound_nodes": [],
                "config": {
                    "batch_input_shape": [None, 28, 28],
                    "dtype": "float32",
                    "sparse": False,
                    "ragged": False,
                    "name": "input_1",
                },
            },
            {
                "class_name": "Flatten",
                "name": "flatten_2",
                "inbound_nodes": [[["input_1", 0, 0, {}]]],
                "config": {
                    "name": "flatten_2",
                    "trainable": True,
                    "dtype": "float32",
                    "data_format": "channels_last",
                },
            },
            {
                **dense("dense_4", 128, "relu"),
                "name": "dense_4",
                "inbound_nodes": [[["flatten_2", 0, 0, {}]]],
            },
            {
                **dense("dense_5", 10, "linear"),
                "name": "dense_5",
                "inbound_nodes": [[["dense_4", 0, 0, {}]]],
            },
        ],
        "input_layers": [["input_1", 0, 0]],
        "output_layers": [["dense_5", 0, 0]],
    },
    "keras_version": "2.8.0",
    "backend": "tensorflow",
}


def keras3_equivalent() -> dict[str, Any]:
    model = keras.Sequential(
        [
            keras.Input((28, 28)),
            keras.layers.Flatten(name="flatten_2"),
            keras.layers.Dense(128, activation="relu", name="dense_4"),
            keras.layers.Dense(10, name="dense_5"),
        ]
    )
    return json.loads(model.to_json())


def summary(model: keras.Model) -> list[tuple[str, int]]:
    return [(layer.name, layer.count_params()) for layer in model.layers]


def test_it_loads_tf_keras_2_json_like_keras_3_json() -> None:
    legacy, modern = load_model(APPENDIX_D, 10**7), load_model(keras3_equivalent(), 10**7)
    assert (
        summary(legacy)
        == summary(modern)
        == [("flatten_2", 0), ("dense_4", 100480), ("dense_5", 1290)]
    )
    assert legacy.input_shape == modern.input_shape == (None, 28, 28)


def test_it_loads_a_legacy_sequential_whose_input_is_on_the_first_layer() -> None:
    config = copy.deepcopy(APPENDIX_D)
    del config["config"]["layers"][0]
    assert summary(load_model(config, 10**7)) == summary(load_model(APPENDIX_D, 10**7))


def test_it_loads_a_legacy_functional_model() -> None:
    model = load_model(LEGACY_FUNCTIONAL, 10**7)
    assert [n for n, _ in summary(model)] == ["input_1", "flatten_2", "dense_4", "dense_5"]
    assert model.count_params() == 101770


def test_it_loads_the_demo_model() -> None:
    assert load_model(demo_model(), 10**7).count_params() == 8 * 8 * 128 + 128 + 1290


def test_it_refuses_lambda_layers() -> None:
    model = keras.Sequential([keras.Input((3,)), keras.layers.Lambda(lambda t: t * 2)])
    with pytest.raises(ModelError, match="'Lambda' is not an allowed"):
        load_model(json.loads(model.to_json()), 10**7)


def test_it_refuses_modules_outside_keras() -> None:
    config = keras3_equivalent()
    config["config"]["layers"][1]["module"] = "os"
    with pytest.raises(ModelError, match="module 'os' is not Keras"):
        load_model(config, 10**7)


def test_it_refuses_registered_custom_objects() -> None:
    config = keras3_equivalent()
    config["config"]["layers"][2]["registered_name"] = "evil>Dense"
    with pytest.raises(ModelError, match="custom object 'evil>Dense'"):
        load_model(config, 10**7)


def test_it_refuses_strings_that_are_urls_or_paths() -> None:
    config = copy.deepcopy(APPENDIX_D)
    config["config"]["layers"][2]["config"]["name"] = "https://example.com/x.h5"
    with pytest.raises(ModelError, match=r"layers\[2\]\.config\.name: strings that are paths"):
        load_model(config, 10**7)


def test_it_refuses_unknown_activations() -> None:
    config = copy.deepcopy(APPENDIX_D)
    config["config"]["layers"][2]["config"]["activation"] = "os.system"
    with pytest.raises(ModelError, match="unknown activation 'os.system'"):
        load_model(config, 10**7)


def test_it_refuses_models_over_the_parameter_cap() -> None:
    with pytest.raises(ModelError, match="101770 parameters exceed the limit of 1000"):
        load_model(APPENDIX_D, 1000)


def test_it_refuses_huge_sizes_before_building() -> None:
    config = copy.deepcopy(APPENDIX_D)
    config["config"]["layers"][2]["config"]["units"] = 10**12
    with pytest.raises(ModelError, match="units: 1000000000000 is too large"):
        load_model(config, 10**7)


def test_it_loads_a_keras_3_functional_model_like_the_one_in_memory() -> None:
    features = keras.Input((6,), name="features")
    wide = keras.layers.Dense(8, activation="relu", name="wide")(features)
    narrow = keras.layers.Dense(4, activation="tanh", name="narrow")(features)
    joined = keras.layers.Concatenate(name="joined")([wide, narrow])
    scores = keras.layers.Dense(3, name="scores")(joined)
    original = keras.Model(features, scores, name="two_branches")
    loaded = load_model(json.loads(original.to_json()), 10**7)
    assert (
        summary(loaded)
        == summary(original)
        == [
            ("features", 0),
            ("wide", 56),
            ("narrow", 28),
            ("joined", 0),
            ("scores", 39),
        ]
    )
    assert loaded.count_params() == original.count_params() == 123
    assert (loaded.input_shape, loaded.output_shape) == ((None, 6), (None, 3))
    # Same wiring: with the same weights, the same outputs.
    loaded.set_weights(original.get_weights())
    x = np.random.default_rng(0).random((5, 6), dtype=np.float32)
    np.testing.assert_allclose(loaded.predict(x, verbose=0), original.predict(x, verbose=0))


def node(*refs: str | list[Any], **kwargs: Any) -> list[list[Any]]:
    """One legacy call: each input as [layer, node, tensor, kwargs] (a name means node 0)."""
    return [[*(ref if isinstance(ref, list) else [ref, 0, 0]), kwargs] for ref in refs]


def legacy(class_name: str, name: str, *calls: list[Any], **config: Any) -> dict[str, Any]:
    """A layer of a tf.keras 2.4-2.12 functional model (no module keys)."""
    return {
        "class_name": class_name,
        "name": name,
        "config": {"name": name, "trainable": True, "dtype": "float32", **config},
        "inbound_nodes": list(calls),
    }


def legacy_input(name: str, *shape: int) -> dict[str, Any]:
    layer = legacy("InputLayer", name, batch_input_shape=[None, *shape], sparse=False)
    layer["config"].update(ragged=False)
    del layer["config"]["trainable"]
    return layer


def legacy_model(layers: list[dict[str, Any]], inputs: str, outputs: str) -> dict[str, Any]:
    return {
        "class_name": "Functional",
        "config": {
            "name": "model",
            "layers": layers,
            "input_layers": [[inputs, 0, 0]],
            "output_layers": [[outputs, 0, 0]],
        },
        "keras_version": "2.8.0",
        "backend": "tensorflow",
    }


def legacy_dense(name: str, units: int, *calls: list[Any]) -> dict[str, Any]:
    return {**dense(name, units, "linear"), "name": name, "inbound_nodes": list(calls)}


def test_it_renames_slashes_in_layer_names_and_in_every_reference() -> None:
    # Keras 3 refuses '/' in names; every keras.applications DenseNet has them.
    config = legacy_model(
        [
            legacy_input("in/put", 4),
            legacy_dense("conv1/dense", 3, node("in/put")),
            legacy_dense("conv1_dense", 3, node("in/put")),  # the renamed name is taken
            legacy("Add", "conv1/add", node("conv1/dense", "conv1_dense")),
            legacy("BatchNormalization", "head/bn", node("conv1/add"), axis=[1]),
        ],
        inputs="in/put",
        outputs="head/bn",
    )
    model = load_model(config, 10**7)
    assert [layer.name for layer in model.layers] == [
        "in_put",
        "conv1_dense_1",
        "conv1_dense",
        "conv1_add",
        "head_bn",
    ]
    assert model.get_layer("head_bn").axis == 1  # tf.keras wrote it as [1]
    assert model.count_params() == 2 * (4 * 3 + 3) + 4 * 3


def test_it_drops_tf_keras_options_keras_3_lacks_and_logs_those_that_were_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    lstm = {
        "class_name": "LSTM",
        "config": {"name": "lstm", "units": 4, "time_major": False, "implementation": 2},
    }
    separable = legacy(
        "SeparableConv1D",
        "separable",
        node("embedding"),
        filters=2,
        kernel_size=[3],
        groups=1,
        kernel_initializer={"class_name": "HeNormal", "config": {"seed": None}},
    )
    config = legacy_model(
        [
            legacy_input("tokens", 6),
            legacy("Embedding", "embedding", node("tokens"), input_dim=9, output_dim=3),
            separable,
            legacy("Bidirectional", "bi", node("separable"), layer=lstm, merge_mode="concat"),
        ],
        inputs="tokens",
        outputs="bi",
    )
    config["config"]["layers"][1]["config"]["input_length"] = 6
    with caplog.at_level("WARNING", logger="trainer.legacy"):
        model = load_model(config, 10**7)
    assert model.output_shape == (None, 8)
    assert "SeparableConv1D.kernel_initializer (x1)" in caplog.text
    assert "time_major" not in caplog.text and "groups" not in caplog.text  # unset: silent


def test_it_turns_tf_keras_arithmetic_on_tensors_into_keras_layers() -> None:
    # `(a + b) * 0.5 - 1.0` in a tf.keras 2 model: TFOpLambda layers naming TF functions.
    def op(function: str, name: str, call: list[Any]) -> dict[str, Any]:
        return legacy("TFOpLambda", name, call, function=function)

    config = legacy_model(
        [
            legacy_input("x", 2),
            legacy_dense("a", 2, node("x")),
            legacy_dense("b", 2, node("x")),
            op("__operators__.add", "tf.__operators__.add", ["a", 0, 0, {"y": ["b", 0, 0]}]),
            op("math.multiply", "tf.math.multiply", ["tf.__operators__.add", 0, 0, {"y": 0.5}]),
            op("math.subtract", "tf.math.subtract", ["tf.math.multiply", 0, 0, {"y": 1.0}]),
        ],
        inputs="x",
        outputs="tf.math.subtract",
    )
    model = load_model(config, 10**7)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["InputLayer", "Dense", "Dense", "Add", "Rescaling", "Rescaling"]
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    a, b = (model.get_layer(n)(x) for n in ("a", "b"))
    np.testing.assert_allclose(model.predict(x, verbose=0), (a + b) * 0.5 - 1.0, rtol=1e-6)


def test_it_refuses_tensorflow_functions_that_are_not_arithmetic() -> None:
    config = legacy_model(
        [
            legacy_input("x", 2),
            legacy("TFOpLambda", "tf.io.read_file", ["x", 0, 0, {}], function="io.read_file"),
        ],
        inputs="x",
        outputs="tf.io.read_file",
    )
    with pytest.raises(ModelError, match=r"layers\[1\]\.config\.function: the TensorFlow func"):
        load_model(config, 10**7)
    # An arithmetic op where no call can be rewritten (inside a wrapper) stays refused.
    op = {"class_name": "TFOpLambda", "config": {"name": "op", "function": "math.add"}}
    config["config"]["layers"][1] = legacy("TimeDistributed", "wrap", node("x"), layer=op)
    with pytest.raises(ModelError, match=r"config\.layer: 'TFOpLambda' is not an allowed"):
        load_model(config, 10**7)


def test_it_wires_tensors_passed_as_keyword_arguments_and_nested_models() -> None:
    # MultiHeadAttention's value is a keyword argument; tf.keras numbers the calls of a
    # nested model that has an Input from 1, Keras 3 from 0.
    inner = legacy_model([legacy_input("i", 3, 4), legacy_dense("d", 4, node("i"))], "i", "d")
    nested = {**inner, "name": "inner", "inbound_nodes": [node("attention"), node(["inner", 1, 0])]}
    nested["config"]["name"] = "inner"
    del nested["keras_version"], nested["backend"]
    attention = legacy(
        "MultiHeadAttention", "attention", node("x", value=["x", 0, 0]), num_heads=1, key_dim=2
    )
    config = legacy_model([legacy_input("x", 3, 4), attention, nested], "x", "inner")
    config["config"]["output_layers"] = [["inner", 2, 0]]  # its second call
    model = load_model(config, 10**7)
    assert model.output_shape == (None, 3, 4)
    assert model.count_params() == 4 * 2 * 3 + 2 * 3 + 2 * 4 + 4 + 20


def test_it_loads_the_layers_keras_applications_define_for_themselves() -> None:
    # ConvNeXt's LayerScale and InceptionResNetV2's CustomScaleLayer, as tf.keras 2.10-2.12
    # wrote them (no module): Keras's own code, built from Keras 3's applications.
    config = legacy_model(
        [
            legacy_input("x", 2),
            legacy("LayerScale", "scale", node("x"), init_values=0.5, projection_dim=2),
            legacy("CustomScaleLayer", "mix", node("x", "scale"), scale=0.5),
        ],
        inputs="x",
        outputs="mix",
    )
    model = load_model(config, 10**7)
    modules = [type(layer).__module__ for layer in model.layers[1:]]
    assert modules == [
        "keras.src.applications.convnext",
        "keras.src.applications.inception_resnet_v2",
    ]
    x = np.array([[1.0, 2.0]], dtype=np.float32)
    np.testing.assert_allclose(model.predict(x, verbose=0), x + x * 0.5 * 0.5, rtol=1e-6)


def test_it_loads_keras_3_arithmetic_and_masks_written_as_operations() -> None:
    # Keras 3 writes `a + b`, `x * 0.5`, `-x` and Embedding(mask_zero=True)'s mask as keras.ops
    tokens = keras.Input((4,), dtype="int32")
    embedded = keras.layers.Embedding(10, 3, mask_zero=True)(tokens)
    a = keras.layers.GlobalAveragePooling1D()(embedded)
    b = keras.layers.Dense(3)(a)
    x = -((a + b) * 0.5 - b / 4.0) + keras.ops.cast(a > 0.0, "float32")
    original = keras.Model(tokens, x)
    model = load_model(json.loads(original.to_json()), 10**7)
    model.set_weights(original.get_weights())
    ops = {type(op).__name__ for op in model.operations if not isinstance(op, keras.layers.Layer)}
    assert ops >= {"NotEqual", "Add", "Multiply", "Subtract", "TrueDivide", "Negative", "Cast"}
    x_in = np.array([[1, 2, 0, 0]], dtype=np.int32)
    np.testing.assert_allclose(model.predict(x_in, verbose=0), original.predict(x_in, verbose=0))


def deep_chain(depth: int) -> dict[str, Any]:
    """A Keras 3 functional model of `depth` ReLU layers one after the other."""

    def relu(name: str, previous: str) -> dict[str, Any]:
        history = {"shape": [None, 2], "dtype": "float32", "keras_history": [previous, 0, 0]}
        return {
            "module": "keras.layers",
            "class_name": "ReLU",
            "registered_name": None,
            "config": {"name": name},
            "name": name,
            "inbound_nodes": [
                {"args": [{"class_name": "__keras_tensor__", "config": history}], "kwargs": {}}
            ],
        }

    head: dict[str, Any] = {
        "module": "keras.layers",
        "class_name": "InputLayer",
        "registered_name": None,
        "config": {"batch_shape": [None, 2], "dtype": "float32", "name": "x"},
        "name": "x",
        "inbound_nodes": [],
    }
    layers = [head, *(relu(f"r{i}", f"r{i - 1}" if i else "x") for i in range(depth))]
    return {
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "registered_name": "Functional",
        "config": {
            "name": "deep",
            "layers": layers,
            "input_layers": ["x", 0, 0],
            "output_layers": [f"r{depth - 1}", 0, 0],
        },
    }


def test_it_builds_graphs_deeper_than_pythons_recursion_limit() -> None:
    # Keras 3 walks the graph with a frame per layer of depth (tf.keras's ResNetRS420: ~2,000);
    # a low limit here stands in for the default 1,000, which would take seconds of layers
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(400)
    try:
        model = load_model(deep_chain(600), 10**7)
        assert sys.getrecursionlimit() == 400
    finally:
        sys.setrecursionlimit(limit)
    assert len(model.layers) == 601


def test_it_builds_with_the_callers_keras_settings() -> None:
    # The model is built in a thread of its own, and Keras keeps its settings per thread
    config = keras3_equivalent()
    for layer in config["config"]["layers"][1:]:
        del layer["config"]["dtype"]  # so the global policy decides
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        model = load_model(config, 10**7)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert {layer.dtype_policy.name for layer in model.layers[1:]} == {"mixed_bfloat16"}


def test_it_builds_the_same_weights_for_the_same_seed() -> None:
    weights = []
    for _ in range(2):
        keras.utils.set_random_seed(11)
        weights.append(load_model(keras3_equivalent(), 10**7).get_weights())
    for first, second in zip(*weights, strict=True):
        np.testing.assert_array_equal(first, second)
