"""Model summary from Keras JSON (no TensorFlow), test metrics, histogram re-binning."""

from __future__ import annotations

import pytest

from web.simulations import summary
from web.simulations.summary import model_summary, output_shape
from web.simulations.tensors import rebin


def _layer(kind: str, **cfg: object) -> dict[str, object]:
    return {"class_name": kind, "config": cfg}


def test_it_walks_a_keras3_sequential_model() -> None:
    model = {
        "class_name": "Sequential",
        "config": {
            "name": "cnn",
            "layers": [
                _layer("InputLayer", batch_shape=[None, 28, 28, 1], name="in"),
                _layer("Conv2D", name="conv", filters=8, kernel_size=[3, 3], padding="valid"),
                _layer("MaxPooling2D", name="pool", pool_size=[2, 2]),
                _layer("Flatten", name="flat"),
                _layer("Dropout", name="drop", rate=0.5),
                _layer("Dense", name="out", units=10, activation="softmax"),
            ],
        },
    }
    got = model_summary(model, {})
    shapes = [row["output_shape"] for row in got["layers"]]
    assert shapes == [
        "(None, 28, 28, 1)",
        "(None, 26, 26, 8)",
        "(None, 13, 13, 8)",
        "(None, 1352)",
        "(None, 1352)",
        "(None, 10)",
    ]
    assert got["layers"][1]["params"] == 3 * 3 * 1 * 8 + 8
    assert (
        got["layers"][5]["params"] == 1352 * 10 + 10 and got["layers"][5]["activation"] == "softmax"
    )


def test_it_prefers_recorded_shapes_and_reads_tf_keras_input_shape() -> None:
    model = {
        "class_name": "Sequential",
        "config": {"layers": [_layer("Dense", name="d", units=4, batch_input_shape=[None, 3])]},
    }
    recorded = {"d": {"params": 16, "variables": {"kernel": [3, 4], "bias": [4]}}}
    got = model_summary(model, recorded)
    assert got["layers"][0]["output_shape"] == "(None, 4)" and got["total"] == 16
    assert output_shape("SomethingCustom", {}, [None, 3]) is None


def test_it_parses_test_metrics_of_finished_runs_only() -> None:
    assert summary.test_metrics("finished", "test: accuracy=0.9120, loss=0.3001, auc=1e-3") == {
        "accuracy": 0.912,
        "loss": 0.3001,
        "auc": 0.001,
    }
    assert summary.test_metrics("finished", "finished; no test set") == {}
    assert summary.test_metrics("running", "test: accuracy=0.5") == {}


def test_it_reads_the_stored_test_metrics_unrounded_over_the_message() -> None:
    stored = {"accuracy": 0.913245678, "loss": 0.28714}
    message = "test: accuracy=0.9132, loss=0.2871"
    assert summary.final_test_metrics("finished", stored, message) == stored
    assert summary.final_test_metrics("finished", {}, "finished; no test set") == {}
    # a stopped run's stored metrics win over the ones an older projection kept in its note
    note = {"problem": "divergence", "test_metrics": {"accuracy": 0.1}}
    assert summary.final_test_metrics("stopped", {"accuracy": 0.25}, "", note) == {"accuracy": 0.25}


def test_it_falls_back_for_rows_stored_before_the_column() -> None:
    message = "test: accuracy=0.9132, loss=0.2871"
    assert summary.final_test_metrics("finished", None, message) == {
        "accuracy": 0.9132,
        "loss": 0.2871,
    }
    note = {"problem": "divergence", "test_metrics": {"accuracy": 0.1}}
    assert summary.final_test_metrics("stopped", None, "stopped early", note) == {"accuracy": 0.1}
    assert summary.final_test_metrics("running", None, message, note) == {}


def test_it_rebins_histograms_onto_one_grid() -> None:
    edges, density = rebin([[0.0, 1.0, 2.0], [1.0, 3.0], [5.0, 5.0]], [[10, 10], [4], [7]], bins=4)
    assert edges == [0.0, 1.25, 2.5, 3.75, 5.0]
    assert sum(density[0]) == pytest.approx(1.0) and density[0][0] == pytest.approx(0.625)
    assert density[1] == pytest.approx([0.125, 0.625, 0.25, 0.0], abs=1e-4)
    assert density[2] == [0.0, 0.0, 0.0, 1.0]
