"""Tiny models and data for the trainer unit tests."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402


def tiny_model(seed: int = 1) -> keras.Model:
    """InputLayer 4x4 -> Flatten -> Dense 8 relu -> Dense 3 (logits), compiled with Adam."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((4, 4), name="pixels"),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(8, activation="relu", name="hidden"),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(0.01),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def tiny_data(n: int = 96, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 4x4 samples and labels 0..2 that depend on the samples (so loss can fall)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 4, 4), dtype=np.float32)
    y = (x.reshape(n, -1)[:, :3].argmax(axis=1)).astype(np.int64)
    return x, y
