"""Model JSON written by tf.keras 2 (tf_keras) and by Keras 3 loads, compiles and trains.

The corpus is never hand-written: at test time each library writes it, in its own subprocess
(tf_keras is only a writer; the trainer reads with Keras 3), into a cache keyed by both
versions and the writer code, so a second run skips the writing. It holds every
`applications` architecture at 32x32 (or the minimum its error names) and hand-made text,
recurrent, attention, multi-branch, nested and arithmetic models. Every model goes through
`trainer.model.load_model` and must keep the writer's parameter count, layer count and output
shape, then trains one batch of 1 with the optimizer and loss the configuration would give.
Every model trains; for a quicker local pass NNT_CORPUS_TRAIN=smallest trains the hand-made
models and only the smallest architecture of each application module (the others differ only
in width and depth) and loads the rest. Measured on two shared cores: about 4 minutes to write
the corpus, 12 minutes for the tests with every model training, 5 with the smallest only. Write a corpus by hand with
`python tests/integration/trainer/test_model_corpus.py write keras|tf_keras DIR`.
No service is needed; it lives with the integration tests for its minutes of CPU.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]  # the first test writes

HERE = Path(__file__).resolve()
ROOT = HERE.parents[3]
FORMATS = ("tf_keras", "keras")
SMALL = 32  # image side; an application that refuses it is built at the minimum it names
BATCH = 1
MAX_PARAMS = 400_000_000  # generous limits: the corpus checks conversion, not the caps
MAX_LAYER_OUTPUT = 100_000_000
WRITE_TIMEOUT_S = 1200

Built = tuple[Any, str]  # (model, loss class name)


# --- The corpus: every model is written by the library under test ---------------------------


def mlp_regression(k: ModuleType) -> Built:
    """Regularizers, constraints, initializers and norms on a regression head."""
    layers = k.layers
    model = k.Sequential(
        [
            k.Input((6,)),
            layers.Dense(
                16,
                activation="relu",
                kernel_initializer=k.initializers.HeNormal(seed=1),
                kernel_regularizer=k.regularizers.L1L2(l1=1e-5, l2=1e-4),
                kernel_constraint=k.constraints.MaxNorm(3.0),
                bias_initializer=k.initializers.Constant(0.1),
            ),
            layers.BatchNormalization(),
            layers.Dropout(0.1),
            layers.Dense(
                8,
                activation="tanh",
                bias_regularizer=k.regularizers.L2(1e-3),
                activity_regularizer=k.regularizers.L1(1e-5),
                kernel_constraint=k.constraints.UnitNorm(),
            ),
            layers.LayerNormalization(),
            layers.GaussianNoise(0.1),
            layers.Dense(1),
        ],
        name="mlp_regression",
    )
    return model, "MeanSquaredError"


def first_layer_input(k: ModuleType) -> Built:
    """The tf.keras 2 habit: the input shape given to the first layer, not an Input."""
    layers = k.layers
    model = k.Sequential(
        [
            layers.Dense(8, activation="relu", input_shape=(5,)),
            layers.LeakyReLU(0.2),
            layers.Dense(3, activation="softmax"),
        ]
    )
    return model, "SparseCategoricalCrossentropy"


def text_recurrent(k: ModuleType) -> Built:
    """Embedding with masking into stacked LSTM, GRU and SimpleRNN."""
    layers = k.layers
    tokens = k.Input((12,), dtype="int32", name="tokens")
    x = layers.Embedding(50, 8, mask_zero=True)(tokens)
    x = layers.LSTM(8, return_sequences=True, dropout=0.1, recurrent_dropout=0.1)(x)
    x = layers.GRU(8, return_sequences=True, reset_after=False)(x)
    x = layers.SimpleRNN(6)(x)
    x = layers.Dropout(0.2)(x)
    return k.Model(
        tokens, layers.Dense(3, activation="softmax")(x)
    ), "SparseCategoricalCrossentropy"


def text_bidirectional(k: ModuleType) -> Built:
    """Bidirectional LSTM and GRU (one with an explicit backward layer) on embeddings."""
    layers = k.layers
    model = k.Sequential(
        [
            k.Input((12,), dtype="int32"),
            layers.Embedding(50, 8),
            layers.Bidirectional(layers.LSTM(8, return_sequences=True)),
            layers.Bidirectional(
                layers.GRU(4),
                backward_layer=layers.GRU(4, go_backwards=True),
                merge_mode="sum",
            ),
            layers.BatchNormalization(),
            layers.Dense(1, activation="sigmoid"),
        ],
        name="text_bidirectional",
    )
    return model, "BinaryCrossentropy"


def text_conv1d(k: ModuleType) -> Built:
    """Convolutions over embeddings with pooling and batch norm."""
    layers = k.layers
    model = k.Sequential(
        [
            k.Input((16,), dtype="int32"),
            layers.Embedding(40, 8),
            layers.Conv1D(8, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling1D(2),
            layers.SeparableConv1D(8, 3, activation="relu"),
            layers.SpatialDropout1D(0.1),
            layers.GlobalMaxPooling1D(),
            layers.Dense(4, activation="softmax"),
        ]
    )
    return model, "SparseCategoricalCrossentropy"


def time_distributed(k: ModuleType) -> Built:
    """TimeDistributed wrappers feeding an LSTM."""
    layers = k.layers
    inputs = k.Input((5, 8))
    x = layers.TimeDistributed(layers.Dense(6, activation="relu"))(inputs)
    x = layers.TimeDistributed(layers.Dropout(0.1))(x)
    x = layers.LSTM(4)(x)
    return k.Model(
        inputs, layers.Dense(2, activation="softmax")(x)
    ), "SparseCategoricalCrossentropy"


def rnn_cells(k: ModuleType) -> Built:
    """RNN over stacked cells whose initializers and regularizers are nested objects."""
    layers = k.layers
    cells = [
        layers.LSTMCell(
            8,
            kernel_initializer=k.initializers.Orthogonal(seed=2),
            recurrent_regularizer=k.regularizers.L2(1e-4),
        ),
        layers.GRUCell(6, bias_constraint=k.constraints.NonNeg()),
    ]
    inputs = k.Input((6, 3))
    x = layers.RNN(layers.StackedRNNCells(cells), return_sequences=True)(inputs)
    x = layers.RNN(layers.SimpleRNNCell(4))(x)
    return k.Model(inputs, layers.Dense(1)(x)), "MeanSquaredError"


def multi_branch(k: ModuleType) -> Built:
    """Branches merged by Concatenate, Add, Subtract, Multiply; one layer applied twice."""
    layers = k.layers
    inputs = k.Input((10,))
    shared = layers.Dense(8, activation="relu", name="shared")
    a = shared(inputs)
    b = shared(layers.Dense(10, name="widen")(inputs))
    added = layers.Add()([a, b])
    mixed = layers.Multiply()([layers.Subtract()([a, b]), added])
    x = layers.Concatenate()([added, mixed, layers.Dense(4)(inputs)])
    x = layers.LayerNormalization()(x)
    x = layers.Dropout(0.1)(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return k.Model(inputs, outputs, name="multi_branch"), "SparseCategoricalCrossentropy"


def nested_models(k: ModuleType) -> Built:
    """A functional and a sequential model used as layers; the functional one twice."""
    layers = k.layers
    inner_in = k.Input((8,))
    inner = k.Model(
        inner_in, layers.BatchNormalization()(layers.Dense(8)(inner_in)), name="inner_block"
    )
    stack = k.Sequential([k.Input((8,)), layers.Dense(8), layers.Dropout(0.1)], name="stack")
    inputs = k.Input((8,))
    x = inner(inputs)
    x = stack(x)
    x = inner(x)
    return k.Model(
        inputs, layers.Dense(2, activation="softmax")(x)
    ), "SparseCategoricalCrossentropy"


def nested_sequential(k: ModuleType) -> Built:
    """A sequential model inside a sequential model, its output the model's output."""
    layers = k.layers
    head = k.Sequential([k.Input((6,)), layers.Dense(4), layers.Dense(3)], name="head")
    model = k.Sequential([k.Input((5,)), layers.Dense(6, activation="relu"), head])
    return model, "MeanSquaredError"


def nested_output(k: ModuleType) -> Built:
    """The model's output is a nested Sequential's, fed by a nested functional model's."""
    layers = k.layers
    block_in = k.Input((6,))
    block = k.Model(block_in, layers.Dense(6, activation="relu")(block_in), name="block")
    head = k.Sequential([k.Input((6,)), layers.Dropout(0.1), layers.Dense(2)], name="head")
    inputs = k.Input((6,))
    return k.Model(inputs, head(block(inputs))), "MeanSquaredError"


def conv_image(k: ModuleType) -> Built:
    """The 2-D layer zoo: convolutions, pooling, resizing, padding, norms and dropouts."""
    layers = k.layers
    model = k.Sequential(
        [
            k.Input((16, 16, 3)),
            layers.Conv2D(8, 3, padding="same"),
            layers.BatchNormalization(axis=-1),
            layers.ReLU(6.0),
            layers.DepthwiseConv2D(3, padding="same"),
            layers.SeparableConv2D(8, 3, padding="same", activation="elu"),
            layers.MaxPooling2D(),
            layers.Conv2DTranspose(4, 3, strides=2, padding="same"),
            layers.UpSampling2D(),
            layers.Cropping2D(((2, 2), (2, 2))),
            layers.ZeroPadding2D(1),
            layers.SpatialDropout2D(0.1),
            layers.AveragePooling2D(2),
            layers.Conv2D(4, 1, activation="swish"),
            layers.Flatten(),
            layers.Dense(5, activation="softmax"),
        ]
    )
    return model, "SparseCategoricalCrossentropy"


def attention(k: ModuleType) -> Built:
    """A transformer block: the value of MultiHeadAttention is a keyword argument."""
    layers = k.layers
    inputs = k.Input((6, 8))
    attended = layers.MultiHeadAttention(num_heads=2, key_dim=4)(inputs, inputs)
    x = layers.LayerNormalization(epsilon=1e-6)(layers.Add()([inputs, attended]))
    x = layers.Dense(8, activation="gelu")(x)
    x = layers.Attention()([x, inputs])
    x = layers.GlobalAveragePooling1D()(x)
    return k.Model(
        inputs, layers.Dense(3, activation="softmax")(x)
    ), "SparseCategoricalCrossentropy"


def arithmetic(k: ModuleType) -> Built:
    """Python operators between tensors and numbers (tf.keras 2 writes TFOpLambda layers)."""
    layers = k.layers
    inputs = k.Input((6,))
    a = layers.Dense(6)(inputs)
    b = layers.Dense(6)(inputs)
    x = (a + b) * 0.5 - b / 4.0
    x = layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)
    x = x * a - 1.0
    return k.Model(inputs, layers.Dense(2)(x)), "MeanSquaredError"


def mixed_precision(k: ModuleType) -> Built:
    """A layer with a mixed dtype policy next to float32 layers."""
    layers = k.layers
    policy = k.mixed_precision.Policy("mixed_bfloat16")
    inputs = k.Input((4,))
    x = layers.Dense(8, activation="relu", dtype=policy)(inputs)
    outputs = layers.Dense(2, activation="softmax", dtype="float32")(x)
    return k.Model(inputs, outputs), "SparseCategoricalCrossentropy"


def lambda_layer(k: ModuleType) -> Built:
    """Python code in the model: must be refused."""
    layers = k.layers
    model = k.Sequential([k.Input((3,)), layers.Lambda(lambda t: t * 2), layers.Dense(1)])
    return model, "MeanSquaredError"


CUSTOM: dict[str, Callable[[ModuleType], Built]] = {
    f.__name__: f
    for f in (
        mlp_regression,
        first_layer_input,
        text_recurrent,
        text_bidirectional,
        text_conv1d,
        time_distributed,
        rnn_cells,
        multi_branch,
        nested_models,
        nested_sequential,
        nested_output,
        conv_image,
        attention,
        arithmetic,
        mixed_precision,
        lambda_layer,
    )
}


def application_names(k: ModuleType) -> list[str]:
    """Every architecture the library's `applications` offers."""
    apps = k.applications
    return sorted(n for n in dir(apps) if n[:1].isupper() and callable(getattr(apps, n)))


def build_application(k: ModuleType, name: str) -> tuple[Any, int]:
    """The architecture at SMALL x SMALL, or at the minimum side its error message names."""
    build = getattr(k.applications, name)
    try:
        return build(weights=None, input_shape=(SMALL, SMALL, 3), classes=10), SMALL
    except ValueError as exc:
        found = re.search(r"at least (\d+)x(\d+)", str(exc))
        if found is None:
            raise
        side = max(int(found.group(1)), int(found.group(2)))
        return build(weights=None, input_shape=(side, side, 3), classes=10), side


def write_corpus(library: str, out: Path) -> None:
    """Write NAME.json for every model, then manifest.json (its presence marks a full corpus)."""
    import importlib

    k = importlib.import_module(library)
    manifest: dict[str, Any] = {"models": {}, "unbuilt": {}}
    out.mkdir(parents=True, exist_ok=True)
    for name in application_names(k):
        try:
            model, side = build_application(k, name)
        except Exception as exc:  # recorded: that model's test fails with the reason
            manifest["unbuilt"][name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        family = getattr(k.applications, name).__module__
        seen = save(model, "SparseCategoricalCrossentropy", out / name, family)
        manifest["models"][name] = seen | {"side": side}
        k.backend.clear_session()
    for name, build in CUSTOM.items():
        model, loss = build(k)
        manifest["models"][name] = save(model, loss, out / name, name)
        k.backend.clear_session()
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))


def save(model: Any, loss: str, stem: Path, family: str) -> dict[str, Any]:
    """model.to_json() to STEM.json; what the writer saw, for the loader to compare."""
    stem.with_suffix(".json").write_text(model.to_json())
    return {
        "loss": loss,
        "family": family,
        "params": int(model.count_params()),
        "layers": len(model.layers),
        "output_shape": list(model.output_shape),
    }


# --- The tests: the trainer's loader reads what the libraries wrote -----------------------

# Refused on purpose: (libraries, name pattern, what the message must say).
REFUSED: list[tuple[tuple[str, ...], str, str]] = [
    (FORMATS, "lambda_layer", r"'Lambda' is not an allowed built-in Keras layer"),
]


# Training a batch costs 1-27 s per application on two cores (eagerly, batch 1): 9 minutes for
# all 111 of them against about one for the smallest of each module.
TRAIN = os.environ.get("NNT_CORPUS_TRAIN", "all")
if TRAIN not in ("smallest", "all"):
    raise ValueError(f"NNT_CORPUS_TRAIN={TRAIN!r}: use 'all' (the default) or 'smallest'")


def cache_dir() -> Path:
    """NNT_CORPUS_CACHE or ~/.cache/nntracker-corpus, per library versions and writer code
    (this file above the tests: editing a test does not rewrite the corpus)."""
    root = Path(os.environ.get("NNT_CORPUS_CACHE", "~/.cache/nntracker-corpus")).expanduser()
    versions = "-".join(importlib.metadata.version(p) for p in ("tf-keras", "keras"))
    writer = HERE.read_text().partition("\n# --- The tests")[0]
    return root / f"{versions}-{hashlib.sha256(writer.encode()).hexdigest()[:12]}"


def run_writer(*args: str) -> subprocess.Popen[bytes]:
    """This file as a script, in a fresh interpreter: the writers never share the loader's."""
    env = os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""}
    return subprocess.Popen(
        [sys.executable, str(HERE), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finished(process: subprocess.Popen[bytes]) -> bytes:
    """The writer's output once it exits; its stderr's tail if it failed."""
    out, err = process.communicate(timeout=WRITE_TIMEOUT_S)
    if process.returncode != 0:
        raise RuntimeError(f"corpus writer {process.args[2:]} failed: {err.decode()[-3000:]}")
    return out


def names() -> dict[str, list[str]]:
    """Each library's application names (listed once, then read from the cache)."""
    path = cache_dir() / "names.json"
    if not path.exists():
        text = finished(run_writer("names")).decode()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return {lib: [*apps, *CUSTOM] for lib, apps in json.loads(path.read_text()).items()}


def refusal(library: str, name: str) -> str | None:
    """The message pattern when the model is refused on purpose, else None."""
    for libraries, pattern, message in REFUSED:
        if library in libraries and re.fullmatch(pattern, name):
            return message
    return None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One case per library and model: those refused on purpose, and all the others."""
    refused = "message" in metafunc.fixturenames
    if "library" not in metafunc.fixturenames:
        return
    cases = [(lib, name, refusal(lib, name)) for lib, listed in names().items() for name in listed]
    chosen = [c if refused else c[:2] for c in cases if (c[2] is not None) == refused]
    metafunc.parametrize(
        ("library", "name", "message") if refused else ("library", "name"),
        chosen,
        ids=[f"{c[0]}-{c[1]}" for c in chosen],
    )


@pytest.fixture(scope="session")
def corpora() -> dict[str, Path]:
    """Both corpora, written (each library in its own process, side by side) unless cached."""
    root = cache_dir()
    writing = {}
    for library in FORMATS:
        if not (root / library / "manifest.json").exists():
            partial = root / f"{library}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            writing[library] = (run_writer("write", library, str(partial)), partial)
    for library, (process, partial) in writing.items():
        finished(process)
        shutil.rmtree(root / library, ignore_errors=True)
        partial.rename(root / library)
    return {library: root / library for library in FORMATS}


def written(corpora: dict[str, Path], library: str, name: str) -> tuple[dict[str, Any], Any]:
    """What the writer saw of the model (and whether it trains a batch here), and its JSON."""
    folder = corpora[library]
    manifest = json.loads((folder / "manifest.json").read_text())
    if name in manifest["unbuilt"]:
        pytest.fail(f"{library} could not build {name} small: {manifest['unbuilt'][name]}")
    seen = manifest["models"][name]
    family = [
        m["params"]
        for other, m in manifest["models"].items()
        if m["family"] == seen["family"] and refusal(library, other) is None
    ]
    trains = TRAIN == "all" or seen["params"] == min(family, default=None)
    return seen | {"trains": trains}, json.loads((folder / f"{name}.json").read_text())


def batch(model: Any, loss: str) -> tuple[np.ndarray, np.ndarray]:
    """One random batch of BATCH samples shaped for the model (tokens below 10 for ints)."""
    rng = np.random.default_rng(0)
    shape = (BATCH, *(d or 8 for d in model.input_shape[1:]))
    integer = "int" in str(model.inputs[0].dtype)
    x = rng.integers(0, 10, shape) if integer else rng.random(shape, dtype=np.float32)
    out = (BATCH, *model.output_shape[1:])
    if loss == "SparseCategoricalCrossentropy":
        return x, rng.integers(0, out[-1], out[:-1])
    if loss == "BinaryCrossentropy":
        return x, rng.integers(0, 2, out).astype(np.float32)
    return x, rng.random(out, dtype=np.float32)


def test_it_loads_compiles_and_trains_each_model_of_the_corpus(
    corpora: dict[str, Path], library: str, name: str
) -> None:
    # Imported here, not above: the writers run this file as a script and need none of it.
    from schemas.experiment import LossSpec, OptimizerSpec
    from trainer.compiling import build_loss, build_metrics, build_optimizer
    from trainer.model import load_model

    seen, config = written(corpora, library, name)
    model = load_model(config, MAX_PARAMS, MAX_LAYER_OUTPUT)
    assert (model.count_params(), len(model.layers), list(model.output_shape)) == (
        seen["params"],
        seen["layers"],
        seen["output_shape"],
    )
    if not seen["trains"]:
        return  # a larger sibling: same builder, same layers, same conversion; seconds of CPU
    loss = LossSpec(loss_function=seen["loss"])
    model.compile(
        optimizer=build_optimizer(OptimizerSpec(optimizer="Adam"), 1e-3),
        loss=build_loss(loss),
        metrics=build_metrics(loss, []),
        # Tracing a graph of hundreds of layers costs a minute on two cores; the hand-made
        # models train in graph mode as the trainer does, the applications eagerly.
        run_eagerly=name not in CUSTOM,
    )
    logs = model.train_on_batch(*batch(model, seen["loss"]), return_dict=True)
    assert math.isfinite(logs["loss"])


def test_it_refuses_what_is_not_built_in_keras_with_a_clear_message(
    corpora: dict[str, Path], library: str, name: str, message: str
) -> None:
    from trainer.errors import ModelError
    from trainer.model import load_model

    _, config = written(corpora, library, name)
    with pytest.raises(ModelError, match=message):
        load_model(config, MAX_PARAMS, MAX_LAYER_OUTPUT)


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    command, *args = sys.argv[1:]
    if command == "names":
        import keras
        import tf_keras

        print(
            json.dumps({"tf_keras": application_names(tf_keras), "keras": application_names(keras)})
        )
    elif command == "write":
        write_corpus(args[0], Path(args[1]))
