"""The trained model a finished run leaves for download: `model.keras` in its last checkpoint,
loadable by Keras with the final weights; earlier checkpoints and stopped runs have none."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from trainer.demo import demo_run_spec
from trainer.publisher import MemoryPublisher
from trainer.runner import run

pytestmark = pytest.mark.unit


def test_it_keeps_the_finished_model_as_a_keras_file_in_the_last_checkpoint(
    tmp_path: Path,
) -> None:
    run_dir = demo_run_spec(tmp_path, total_epochs=2)
    assert run(run_dir, MemoryPublisher()) == 0
    root = run_dir / "checkpoints"
    latest = json.loads((root / "latest.json").read_text())
    assert latest["epoch"] == 2
    final = root / latest["path"]
    model = keras.saving.load_model(final / "model.keras")
    with np.load(final / "model.npz") as saved:
        weights = [saved[f"arr_{i}"] for i in range(len(saved.files))]
    assert len(model.get_weights()) == len(weights)
    for got, want in zip(model.get_weights(), weights, strict=True):
        assert np.array_equal(got, want)
    assert model.predict(np.zeros((1, 8, 8), np.float32), verbose=0).shape == (1, 10)
    earlier = [p for p in root.glob("epoch-*") if p != final]
    assert earlier and not any((p / "model.keras").exists() for p in earlier)
