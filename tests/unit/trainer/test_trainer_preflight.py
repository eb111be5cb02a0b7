"""The pre-flight check: the mistakes users make, each named with its field and fix, no run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from schemas.run import CHECK_FILE, RUN_SPEC_FILE
from trainer.__main__ import main
from trainer.demo import demo_run_spec

pytestmark = pytest.mark.unit


def check(tmp_path: Path, **config: Any) -> dict[str, Any]:
    """Run `python -m trainer RUN_DIR` on the digits demo in check mode with `config` changes."""
    run_dir = demo_run_spec(tmp_path, total_epochs=2)
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    spec["mode"] = "check"
    spec["config"].update(config)
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    assert main([str(run_dir)]) == 0
    assert not (run_dir / "checkpoints").exists(), "a check never trains"
    return json.loads((run_dir / CHECK_FILE).read_text())


def logits_loss(**conf: Any) -> list[dict[str, Any]]:
    return [
        {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": True, **conf}}
    ]


def test_it_passes_the_demo_grid(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        optimizers=[{"optimizer": "Adam"}, {"optimizer": "SGD", "conf": {"momentum": 0.9}}],
    )
    assert result["errors"] == {}


def test_it_names_a_misspelt_loss_option_and_suggests_the_right_one(tmp_path: Path) -> None:
    result = check(tmp_path, loss_functions=logits_loss(from_logit=True))
    assert result["errors"] == {
        "loss_functions.0.conf.from_logit": "unknown option 'from_logit' for "
        "SparseCategoricalCrossentropy; did you mean 'from_logits'?"
    }


def test_it_names_a_misspelt_optimizer_option_by_its_row(tmp_path: Path) -> None:
    result = check(
        tmp_path,
        optimizers=[{"optimizer": "Adam"}, {"optimizer": "SGD", "conf": {"momentun": 0.9}}],
    )
    assert list(result["errors"]) == ["optimizers.1.conf.momentun"]
    assert "did you mean 'momentum'?" in result["errors"]["optimizers.1.conf.momentun"]


def test_it_adapts_sparse_labels_for_metrics_that_need_one_hot(tmp_path: Path) -> None:
    metrics = [{"metric": "KLDivergence"}, {"metric": "LogCoshError"}]
    result = check(tmp_path, loss_functions=logits_loss(), extra_metrics=metrics)
    assert result["errors"] == {}
    adapted = [n for n in result["notes"] if "one-hot encoded" in n]
    assert [n.split(" ", 1)[0] for n in adapted] == ["extra_metrics[0]", "extra_metrics[1]"]
    assert "softmax" in adapted[0]


def test_it_refuses_labels_that_do_not_fit_the_model(tmp_path: Path) -> None:
    run_dir = demo_run_spec(tmp_path / "demo", total_epochs=2)
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    with np.load(spec["datasets"]["train"]) as data:
        x, y = data["x_train"], data["y_train"]
    np.savez(spec["datasets"]["train"], x_train=x, y_train=y + 5)  # labels 5..14, 10 outputs
    spec["mode"] = "check"
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    assert main([str(run_dir)]) == 0
    errors = json.loads((run_dir / CHECK_FILE).read_text())["errors"]
    assert list(errors) == ["dataset_train"]
    assert "outside 0..9" in errors["dataset_train"]


def test_it_refuses_features_whose_shape_does_not_fit_the_input(tmp_path: Path) -> None:
    run_dir = demo_run_spec(tmp_path / "demo", total_epochs=2)
    spec = json.loads((run_dir / RUN_SPEC_FILE).read_text())
    with np.load(spec["datasets"]["train"]) as data:
        x, y = data["x_train"], data["y_train"]
    np.savez(spec["datasets"]["train"], x_train=x[:, :7, :7], y_train=y)
    spec["mode"] = "check"
    (run_dir / RUN_SPEC_FILE).write_text(json.dumps(spec))
    main([str(run_dir)])
    errors = json.loads((run_dir / CHECK_FILE).read_text())["errors"]
    assert "model's input expects (8, 8)" in errors["dataset_train"]


def test_it_names_a_metric_that_fails_on_the_batch(tmp_path: Path) -> None:
    # AUC works (adapted to one-hot); MeanIoU compares class indices with 10-way outputs and
    # fails inside TensorFlow: the error must land on that metric, not on the loss or AUC.
    metrics = [{"metric": "AUC"}, {"metric": "MeanIoU", "conf": {"num_classes": 2}}]
    result = check(tmp_path, loss_functions=logits_loss(), extra_metrics=metrics)
    assert list(result["errors"]) == ["extra_metrics.1"]
    assert "Traceback" not in result["errors"]["extra_metrics.1"]


def test_it_names_a_loss_that_does_not_fit_the_labels(tmp_path: Path) -> None:
    result = check(tmp_path, loss_functions=[{"loss_function": "MeanSquaredError"}])
    assert "give one target per output unit" in result["errors"]["dataset_train"]
