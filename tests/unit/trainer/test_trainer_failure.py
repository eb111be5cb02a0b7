"""A failed run's one line: real Keras and TensorFlow failures, summarised for a person."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Callable, Iterator  # noqa: E402

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from trainer.errors import DatasetError  # noqa: E402
from trainer.failure import DETAIL_CAP, LINE_CAP, full_text, summarise  # noqa: E402

pytestmark = pytest.mark.unit
LAYERS = ["hidden", "dense_2", "tokens", "flat", "out", "logits", "huge"]


@pytest.fixture(params=["unfiltered", "filtered"])
def filtering(request: pytest.FixtureRequest) -> Iterator[str]:
    """Both ways a traceback reaches the summary: the trainer's (Keras's own frames kept),
    and Keras's default (its frames cut)."""
    before = keras.config.is_traceback_filtering_enabled()
    if request.param == "filtered":
        keras.config.enable_traceback_filtering()
    else:
        keras.config.disable_traceback_filtering()
    yield request.param
    (
        keras.config.enable_traceback_filtering
        if before
        else keras.config.disable_traceback_filtering
    )()


def failure(fn: Callable[[], object]) -> Exception:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the failure under test
        return exc
    raise AssertionError("expected this Keras call to fail")


def model(*layers: keras.layers.Layer, shape: tuple[int, ...] = (4,)) -> keras.Model:
    return keras.Sequential([keras.Input(shape), *layers])


def readable(line: str) -> str:
    assert "\n" not in line and len(line) <= LINE_CAP and "Traceback" not in line, line
    return line


def test_it_names_the_loss_and_the_output_layer_when_the_labels_do_not_fit(filtering: str) -> None:
    net = model(keras.layers.Dense(8, name="hidden"), keras.layers.Dense(10, name="dense_2"))
    net.compile("adam", "mse")
    exc = failure(lambda: net.fit(np.zeros((64, 4)), np.zeros((64, 3)), verbose=0))
    line, detail = summarise(exc, "epoch 3", LAYERS)
    assert readable(line) == (
        "epoch 3, loss 'mse': incompatible shapes: labels [32,3] vs layer 'dense_2' output "
        "[32,10] — check the label shape against the model's output"
    )
    assert "Dimensions must be equal" in detail and detail.startswith("Traceback")


def test_it_names_the_layer_whose_input_does_not_fit(filtering: str) -> None:
    net = model(keras.layers.Dense(8, name="hidden"), keras.layers.Dense(1, name="dense_2"))
    net.compile("adam", "mse")
    exc = failure(lambda: net.fit(np.zeros((64, 5)), np.zeros((64, 1)), verbose=0))
    line = readable(summarise(exc, "epoch 1", LAYERS)[0])
    assert line.startswith("epoch 1, layer 'hidden': input 0 is incompatible: expected axis -1")
    assert "(32, 5)" in line and line.endswith("check the data's shape against the model's Input")
    assert "Exception encountered" not in line and "\x1b" not in line


@pytest.mark.parametrize("filtering", ["unfiltered"], indirect=True)  # as the trainer runs
def test_it_names_the_metric_that_cannot_read_class_index_labels(filtering: str) -> None:
    net = model(keras.layers.Dense(3, name="dense_2"))
    net.compile("adam", "sparse_categorical_crossentropy", metrics=[keras.metrics.AUC(name="auc")])
    labels = np.zeros((64,), dtype="int64")
    exc = failure(lambda: net.fit(np.zeros((64, 4)), labels, verbose=0))
    line = readable(summarise(exc, "epoch 1", LAYERS)[0])
    assert line.startswith("epoch 1, metric 'auc': ")
    assert line.endswith(
        "check that the metric fits the labels (class indices or one value per output)"
    )


def test_it_digs_the_sentence_out_of_a_graph_execution_error(filtering: str) -> None:
    net = model(
        keras.layers.Embedding(10, 4, name="tokens"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(1, name="out"),
        shape=(3,),
    )
    net.compile("adam", "mse")
    x_val = np.zeros((64, 3))
    x_val[40, 1] = 12  # an id the Embedding has no row for, met only in validation
    exc = failure(
        lambda: net.fit(
            np.zeros((64, 3)), np.zeros((64, 1)), validation_data=(x_val, np.zeros((64, 1))),
            verbose=0,
        )
    )  # fmt: skip
    assert isinstance(exc, tf.errors.InvalidArgumentError) and len(str(exc)) > 1500
    line, detail = summarise(exc, "epoch 1 (validation)", LAYERS)
    assert readable(line) == (
        "epoch 1 (validation), layer 'tokens': input value 12 is not a valid index in [0, 10) "
        "— raise the layer's input_dim (vocabulary size) or fix the data"
    )
    assert "Graph execution error" in detail and "GatherV2" in detail


def test_it_says_which_label_is_out_of_range_for_the_loss(filtering: str) -> None:
    net = model(keras.layers.Dense(3, name="logits"))
    net.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    exc = failure(lambda: net.fit(np.zeros((64, 4)), np.full((64,), 5), verbose=0))
    line = readable(summarise(exc, "epoch 2", LAYERS)[0])
    assert line == (
        "epoch 2, loss 'sparse_categorical_crossentropy': label 5 is outside the valid range "
        "[0, 3) — labels must be class indices below the last layer's units"
    )


def test_it_says_out_of_memory_with_the_tensor_and_the_fix(filtering: str) -> None:
    # A 2^20 x 2^20 float kernel is 4 TiB: the allocation is refused at once, nothing is used.
    exc = failure(lambda: model(keras.layers.Dense(2**20, name="huge"), shape=(2**20,)))
    assert isinstance(exc, tf.errors.ResourceExhaustedError)
    line = readable(summarise(exc, "before training", LAYERS)[0])
    assert "out of memory allocating a float tensor of shape [1048576,1048576] on CPU:0" in line
    assert line.startswith("before training") and line.endswith(
        "lower batch_size or make the model smaller"
    )
    if filtering == "unfiltered":
        assert line.startswith("before training, layer 'huge': ")


def test_it_says_where_nan_values_appeared() -> None:
    net = model(keras.layers.Dense(1, name="out"))
    net.layers[0].kernel.assign(np.full((4, 1), np.inf, dtype="float32"))
    loss = keras.losses.MeanSquaredError()(np.zeros((2, 1)), net(np.zeros((2, 4), "float32")))
    exc = failure(lambda: tf.debugging.check_numerics(loss, "loss"))
    assert readable(summarise(exc, "epoch 4")[0]) == (
        "epoch 4: NaN values in loss — lower the learning rate or scale the inputs"
    )


def test_it_keeps_our_own_errors_as_they_are_on_their_first_line() -> None:
    exc = DatasetError("dataset_val: label 9 is outside 0..4 for a model with 5 outputs\nmore")
    line, detail = summarise(exc, "epoch 2")
    assert line == "dataset_val: label 9 is outside 0..4 for a model with 5 outputs"
    assert detail.endswith(
        "DatasetError: dataset_val: label 9 is outside 0..4 for a model with 5 outputs\nmore"
    )
    long = summarise(DatasetError("dataset_train: " + "x" * 500))[0]
    assert len(long) == LINE_CAP and long.endswith("…")


def test_it_names_the_type_of_an_unexpected_error_and_keeps_its_cause() -> None:
    def load() -> None:
        try:
            {}["x_train"]
        except KeyError as exc:
            raise RuntimeError("no features") from exc

    exc = failure(load)
    line, detail = summarise(exc, "before training")
    assert line == "before training: RuntimeError: no features"
    assert "KeyError: 'x_train'" in detail and "direct cause" in detail


def test_it_cuts_the_middle_of_a_huge_error_and_keeps_its_end() -> None:
    exc = ValueError("start\n" + "frame\n" * 10_000 + "the actual reason")
    text = full_text(exc)
    assert len(text) < DETAIL_CAP + 100 and "characters cut" in text
    assert text.startswith("ValueError: start") and text.endswith("the actual reason")
