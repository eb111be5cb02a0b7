"""Training overhead: our callback vs uninstrumented training vs TensorBoard's callback, and
our callback with its diagnoses (trainer.diagnosis) vs without them.

Same data, same models, same process; each variant runs several times in interleaved order
and the median wall time counts. Ours collects weights, biases, gradients and activations
every epoch and publishes them to a real Kafka broker; TensorBoard runs with histogram_freq=1.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

EPOCHS = 5
REPEATS = 3
SAMPLES = int(os.environ.get("NNT_BENCH_SAMPLES", "60000"))


def digits_28x28() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits (shipped offline) upscaled to 28x28 and tiled to MNIST's size
    (60,000 training images): the per-epoch cost is measured against epochs of that length."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = np.kron(digits.images / 16.0, np.ones((4, 4)))[:, 2:30, 2:30].astype("float32")
    reps = -(-SAMPLES // len(images))
    x = np.concatenate([images] * reps)[:SAMPLES]
    y = np.concatenate([digits.target] * reps)[:SAMPLES].astype("int32")
    return x, y


def mlp() -> Any:
    """The seed's appendix-D MLP: Flatten → Dense 128 relu → Dense 10."""
    import keras

    return keras.Sequential(
        [
            keras.layers.Input((28, 28)),
            keras.layers.Flatten(),
            keras.layers.Dense(128, activation="relu"),
            keras.layers.Dense(10),
        ]
    )


def cnn() -> Any:
    """A small CNN on the same images."""
    import keras

    return keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(10),
        ]
    )


def fit_time(build: Callable[[], Any], x: np.ndarray, y: np.ndarray, callbacks: list[Any]) -> float:
    """Wall time of model.fit for EPOCHS epochs (compile and first trace excluded by a warm-up)."""
    import keras

    keras.utils.set_random_seed(3)
    model = build()
    model.compile(
        optimizer="adam",
        metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0)  # trace once
    start = time.perf_counter()
    model.fit(
        x, y, epochs=EPOCHS, batch_size=64, verbose=0, validation_split=0.1, callbacks=callbacks
    )
    return time.perf_counter() - start


def variants(bootstrap: str, x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], list[Any]]]:
    """Callback lists of each variant, made fresh for every run."""
    import keras

    from bench.services import run_key
    from schemas.experiment import CollectSpec
    from trainer.sdk import TrackerCallback

    def tracker(diagnose: bool) -> list[Any]:
        sid = uuid.uuid4()  # signed like a real run: the HMAC per message is part of the cost
        return [
            TrackerCallback(bootstrap, "bench overhead", simulation_id=sid, run_key=run_key(sid),
                            probe=(x[:64], y[:64]), announce=False,
                            collect=CollectSpec(diagnose=diagnose))
        ]  # fmt: skip

    def ours() -> list[Any]:
        return tracker(diagnose=True)

    def ours_undiagnosed() -> list[Any]:
        return tracker(diagnose=False)

    def tensorboard() -> list[Any]:
        return [
            keras.callbacks.TensorBoard(
                log_dir=tempfile.mkdtemp(prefix="nnt-tb-"), histogram_freq=1
            )
        ]

    return {
        "none": list,
        "ours": ours,
        "ours_undiagnosed": ours_undiagnosed,
        "tensorboard": tensorboard,
    }


def measure(bootstrap: str) -> dict[str, Any]:
    """Median wall times per model and variant, and the ratios."""
    x, y = digits_28x28()
    models = {"mlp": (mlp, x), "cnn": (cnn, x[..., None])}
    out: dict[str, Any] = {"epochs": EPOCHS, "repeats": REPEATS, "samples": len(x)}
    for name, (build, data) in models.items():
        times: dict[str, list[float]] = {}
        for _ in range(REPEATS):
            for variant, make in variants(bootstrap, data, y).items():
                times.setdefault(variant, []).append(fit_time(build, data, y, make()))
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {
            "median_s": med,
            "ours_ratio": med["ours"] / med["none"],
            "tensorboard_ratio": med["tensorboard"] / med["none"],
            "diagnosis_ratio": med["ours"] / med["ours_undiagnosed"],
        }
    out["training_overhead_ratio"] = statistics.mean(out[m]["ours_ratio"] for m in models)
    out["tensorboard_overhead_ratio"] = statistics.mean(out[m]["tensorboard_ratio"] for m in models)
    out["diagnosis_cost_ratio"] = statistics.mean(out[m]["diagnosis_ratio"] for m in models)
    return out


def run() -> dict[str, Any]:
    """Start (or reuse) Kafka and measure."""
    from bench.services import kafka

    with kafka() as bootstrap:
        return measure(bootstrap)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
