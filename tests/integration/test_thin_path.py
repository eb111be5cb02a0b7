"""The thin path, all real: Keras → TrackerCallback → Kafka → Faust worker → PostgreSQL.

What Keras reported for each epoch must equal the rows in the database, and the weights and
biases rebuilt from the stored chunks must equal `model.get_weights()` bit for bit.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import numpy as np
import psycopg
import pytest

from schemas import tensors
from tests.streamworker import Worker, run_key, until

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(scope="module")
def thin_worker(
    kafka_bootstrap: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    worker = Worker(kafka_bootstrap, pg_url, tmp_path_factory.mktemp("thin-worker"))
    worker.wait_ready()
    yield worker
    worker.stop()


def digits_mlp(hidden: int, seed: int, metrics: list[str] | None = None):
    """scikit-learn's digits and a compiled Flatten -> Dense `hidden` relu -> Dense 10 MLP;
    returns (model, x, y)."""
    import keras
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.images / 16.0).astype("float32")
    y = digits.target.astype("int32")
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8)),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(hidden, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(0.01),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=metrics or [],
    )
    return model, x, y


def train_tracked(bootstrap: str, epochs: int):
    """A small digits MLP trained with the callback; returns (callback, history, model)."""
    from trainer.sdk import TrackerCallback

    model, x, y = digits_mlp(32, seed=7, metrics=["accuracy"])
    sid = uuid.uuid4()  # with its key, as POST /api/sdk-runs hands them out (same secret)
    callback = TrackerCallback(
        bootstrap, "thin path", simulation_id=sid, run_key=run_key(sid), tags=["thin"],
        probe=(x[:32], y[:32]),
    )  # fmt: skip
    history = model.fit(
        x[:1200],
        y[:1200],
        validation_data=(x[1200:], y[1200:]),
        epochs=epochs,
        batch_size=64,
        verbose=0,
        callbacks=[callback],
    )
    return callback, history, model


def test_it_stores_exactly_what_keras_reported(
    kafka_bootstrap: str, pg_url: str, thin_worker: Worker
) -> None:
    epochs = 4
    callback, history, model = train_tracked(kafka_bootstrap, epochs)
    sid = callback.simulation_id
    reported = {
        (name, epoch + 1): value
        for name, values in history.history.items()
        for epoch, value in enumerate(values)
    }

    def stored() -> dict[tuple[str, int], float] | None:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT metric, epoch, value FROM nnt_epoch_metric WHERE simulation_id = %s", (sid,)
            ).fetchall()
        found = {(m, e): v for m, e, v in rows if (m, e) in reported}
        return found if len(found) == len(reported) else None

    found = until(stored, 120, thin_worker)
    for key, value in reported.items():
        assert found[key] == pytest.approx(value, rel=1e-6), key

    def last_tensors() -> list[tuple] | None:
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute(
                "SELECT layer_name, kind, dtype, shape, compression, chunk, chunks, data FROM nnt_tensor "
                "WHERE simulation_id = %s AND epoch = %s AND kind IN ('kernel', 'bias') ORDER BY layer_index, kind, chunk",
                (sid, epochs),
            ).fetchall()
        return rows if len({(r[0], r[1]) for r in rows}) == 4 else None

    rows = until(last_tensors, 120, thin_worker)
    rebuilt: dict[tuple[str, str], np.ndarray] = {}
    for layer, kind, dtype, shape, compression, _chunk, _chunks, _ in rows:
        parts = b"".join(bytes(r[7]) for r in rows if (r[0], r[1]) == (layer, kind))
        rebuilt[(layer, kind)] = tensors.decode_array(parts, dtype, shape, compression)
    hidden, logits = model.get_layer("hidden"), model.get_layer("logits")
    expected = {
        ("hidden", "kernel"): hidden.kernel,
        ("hidden", "bias"): hidden.bias,
        ("logits", "kernel"): logits.kernel,
        ("logits", "bias"): logits.bias,
    }
    for key, variable in expected.items():
        assert rebuilt[key].tobytes() == np.asarray(variable).astype(np.float32).tobytes(), key
