"""Training overhead: our callback vs uninstrumented training vs TensorBoard's and MLflow's
callbacks, our callback with its diagnoses (trainer.diagnosis) vs without them, and a
ResNet50-size model (about 23.6M parameters) with everything collected vs a chosen few layers
(`measure_large`, run as its own benchmark by bench/large_model.py).

Same data, same models, same process; each variant runs several times in interleaved order
and the median wall time counts. Ours collects weights, biases, gradients and activations
every epoch and publishes them to a real Kafka broker; TensorBoard runs with histogram_freq=1;
MLflow's own Keras callback logs the epoch metrics to its default local store (SQLite). On the
large model one epoch's publishing is also profiled, to show where its cost goes.
"""

from __future__ import annotations

import cProfile
import json
import os
import pstats
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

EPOCHS = 5
REPEATS = 3
SAMPLES = int(os.environ.get("NNT_BENCH_SAMPLES", "60000"))
# The large model: few 32x32 images so that it trains in minutes on two cores; 2,304 to
# train and 256 to validate are whole batches of 64 (a partial one would trace again).
LARGE_SAMPLES = int(os.environ.get("NNT_BENCH_LARGE_SAMPLES", "2560"))
LARGE_EPOCHS = 3
LARGE_REPEATS = 3
# What a user watching a large model may choose (schemas.experiment.CollectSpec): the last
# residual block and the classifier, full tensors every 5th logged epoch (and the last).
SELECTED = {
    "layers": ["conv5_block3_1_conv", "conv5_block3_2_conv", "conv5_block3_3_conv", "predictions"],
    "full_tensor_period": 5,
}


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


def digits_32x32x3(samples: int) -> tuple[np.ndarray, np.ndarray]:
    """The same digits at 32x32 in three channels (ResNet50's smallest input)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    gray = np.kron(digits.images / 16.0, np.ones((4, 4))).astype("float32")
    images = np.repeat(gray[..., None], 3, axis=-1)
    reps = -(-samples // len(images))
    x = np.concatenate([images] * reps)[:samples]
    y = np.concatenate([digits.target] * reps)[:samples].astype("int32")
    return x, y


def resnet50() -> Any:
    """keras.applications.ResNet50 untrained, on 32x32x3 images, 10 classes (logits)."""
    import keras

    return keras.applications.ResNet50(
        weights=None, input_shape=(32, 32, 3), classes=10, classifier_activation=None
    )


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


def compiled(build: Callable[[], Any]) -> Any:
    """A fresh model, seeded and compiled the same way for every variant."""
    import keras

    keras.utils.set_random_seed(3)
    model = build()
    model.compile(
        optimizer="adam",
        metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def fit_time(
    build: Callable[[], Any], x: np.ndarray, y: np.ndarray, callbacks: list[Any], epochs: int
) -> float:
    """Wall time of model.fit for `epochs` epochs (compile and the first traces of the train
    and validation steps excluded by a warm-up)."""
    model = compiled(build)
    model.fit(x[:640], y[:640], epochs=1, batch_size=64, verbose=0, validation_split=0.1)
    start = time.perf_counter()
    model.fit(
        x, y, epochs=epochs, batch_size=64, verbose=0, validation_split=0.1, callbacks=callbacks
    )
    return time.perf_counter() - start


def tracker(bootstrap: str, x: np.ndarray, y: np.ndarray, **collect: Any) -> Any:
    """Our callback, signed like a real run (the HMAC per message is part of the cost)."""
    from bench.services import run_key
    from schemas.experiment import CollectSpec
    from trainer.sdk import TrackerCallback

    sid = uuid.uuid4()
    return TrackerCallback(bootstrap, "bench overhead", simulation_id=sid, run_key=run_key(sid),
                           probe=(x[:64], y[:64]), announce=False,
                           collect=CollectSpec(**collect))  # fmt: skip


def variants(bootstrap: str, x: np.ndarray, y: np.ndarray) -> dict[str, Callable[[], list[Any]]]:
    """Callback lists of each variant on the small models, made fresh for every run."""
    import keras

    from bench.peers import mlflow_keras_callback

    def tensorboard() -> list[Any]:
        return [
            keras.callbacks.TensorBoard(
                log_dir=tempfile.mkdtemp(prefix="nnt-tb-"), histogram_freq=1
            )
        ]

    return {
        "none": list,
        "ours": lambda: [tracker(bootstrap, x, y)],
        "ours_undiagnosed": lambda: [tracker(bootstrap, x, y, diagnose=False)],
        "tensorboard": tensorboard,
        "mlflow": lambda: [mlflow_keras_callback()],
    }


def large_variants(
    bootstrap: str, x: np.ndarray, y: np.ndarray
) -> dict[str, Callable[[], list[Any]]]:
    """The large model: uninstrumented, everything every epoch, the SELECTED layers."""
    return {
        "none": list,
        "ours": lambda: [tracker(bootstrap, x, y)],
        "ours_selected": lambda: [tracker(bootstrap, x, y, **SELECTED)],
    }


def medians(
    build: Callable[[], Any],
    x: np.ndarray,
    y: np.ndarray,
    made: dict[str, Callable[[], list[Any]]],
    repeats: int,
    epochs: int,
) -> dict[str, float]:
    """Median fit time of each variant, the variants interleaved in every repeat."""
    times: dict[str, list[float]] = {}
    for _ in range(repeats):
        for variant, make in made.items():
            times.setdefault(variant, []).append(fit_time(build, x, y, make(), epochs))
    return {k: statistics.median(v) for k, v in times.items()}


def measure(bootstrap: str) -> dict[str, Any]:
    """Median wall times per small model and variant, and the ratios."""
    from bench.peers import mlflow_local_store

    x, y = digits_28x28()
    models = {"mlp": (mlp, x), "cnn": (cnn, x[..., None])}
    out: dict[str, Any] = {"epochs": EPOCHS, "repeats": REPEATS, "samples": len(x)}
    with mlflow_local_store() as store:
        out["mlflow_store"] = store.rsplit("/", 1)[-1]
        for name, (build, data) in models.items():
            med = medians(build, data, y, variants(bootstrap, data, y), REPEATS, EPOCHS)
            out[name] = {
                "median_s": med,
                "ours_ratio": med["ours"] / med["none"],
                "tensorboard_ratio": med["tensorboard"] / med["none"],
                "mlflow_ratio": med["mlflow"] / med["none"],
                "diagnosis_ratio": med["ours"] / med["ours_undiagnosed"],
            }
    for key, ratio in (("training_overhead_ratio", "ours_ratio"),
                       ("tensorboard_overhead_ratio", "tensorboard_ratio"),
                       ("mlflow_overhead_ratio", "mlflow_ratio"),
                       ("diagnosis_cost_ratio", "diagnosis_ratio")):  # fmt: skip
        out[key] = statistics.mean(out[m][ratio] for m in models)
    return out


# Where an epoch's publishing goes: the cumulative seconds of these (file, function) pairs.
PHASES = {
    "weights to NumPy": ("keras/src/ops/core.py", "convert_to_numpy"),
    "statistics and histograms": ("trainer/stats.py", "tensor_stats"),
    "probe gradients and activations": ("trainer/probes.py", "__call__"),
    "diagnosis": ("trainer/diagnosis/watch.py", "diagnose"),
    "tensor encoding (zstd) and chunking": ("trainer/reporting.py", "tensor_messages"),
    "Kafka produce and HMAC": ("trainer/publisher.py", "send"),
}


def profile_epoch(bootstrap: str, x: np.ndarray, y: np.ndarray) -> dict[str, Any]:
    """One epoch of the large model with everything collected: where the callback's time
    goes (cProfile of its report, then the wait for Kafka's delivery)."""
    model = compiled(resnet50)
    callback = tracker(bootstrap, x, y)
    model.fit(x[:256], y[:256], epochs=1, batch_size=64, verbose=0, callbacks=[callback])
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.runcall(callback.report, callback.completed + 1, {"loss": 1.0}, 1.0, 4)
    reported = time.perf_counter() - start
    flushed = time.perf_counter()
    callback.publisher.flush(120)
    flush_s = time.perf_counter() - flushed
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    phases = {
        phase: round(
            sum(st[3] for (f, _, fn), st in stats.items() if f.endswith(file) and fn == func), 3
        )
        for phase, (file, func) in PHASES.items()
    }
    phases["everything else"] = round(reported - sum(phases.values()), 3)
    top = sorted(stats.items(), key=lambda kv: kv[1][2], reverse=True)[:12]
    return {
        "report_s": round(reported, 3),  # under cProfile: Python-heavy parts look slower
        "kafka_flush_s": round(flush_s, 3),
        "phases_s": phases,
        "top_own_time_s": {
            f"{Path(f).name}:{line} {func}": round(st[2], 3) for (f, line, func), st in top
        },
    }


def measure_large(bootstrap: str) -> dict[str, Any]:
    """ResNet50 on 32x32 images: uninstrumented vs everything vs SELECTED, and a profile."""
    x, y = digits_32x32x3(LARGE_SAMPLES)
    med = medians(resnet50, x, y, large_variants(bootstrap, x, y), LARGE_REPEATS, LARGE_EPOCHS)
    params = compiled(resnet50).count_params()
    per_epoch = (med["ours"] - med["none"]) / LARGE_EPOCHS
    return {
        "model": "keras.applications.ResNet50(weights=None, input_shape=(32, 32, 3), classes=10)",
        "parameters": params,
        "samples": len(x),
        "epochs": LARGE_EPOCHS,
        "repeats": LARGE_REPEATS,
        "selected": SELECTED,
        "median_s": med,
        "large_model_overhead_ratio": med["ours"] / med["none"],
        "large_model_selected_overhead_ratio": med["ours_selected"] / med["none"],
        "overhead_s_per_epoch": round(per_epoch, 2),
        "selected_overhead_s_per_epoch": round(
            (med["ours_selected"] - med["none"]) / LARGE_EPOCHS, 2
        ),
        "epoch_s": round(med["none"] / LARGE_EPOCHS, 2),
        "profile": profile_epoch(bootstrap, x, y),
    }


def run() -> dict[str, Any]:
    """Start (or reuse) Kafka and measure."""
    from bench.services import kafka

    with kafka() as bootstrap:
        return measure(bootstrap)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
