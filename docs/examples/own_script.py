"""Instrument your own Keras script: the run appears in NN Tracker like any other.

Run it against a local stack (`make up` in another terminal):

    .venv/bin/python docs/examples/own_script.py

then open http://127.0.0.1:8000/simulations/ (as a staff user, or set OWNER to your username).
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from trainer.sdk import CollectSpec, TrackerCallback  # noqa: E402

OWNER = os.environ.get("NNT_OWNER", "demo")

digits = load_digits()
x = (digits.images / 16.0).astype("float32")
y = digits.target.astype("int32")

model = keras.Sequential(
    [
        keras.layers.Input((8, 8)),
        keras.layers.Flatten(),
        keras.layers.Dense(64, activation="relu"),
        keras.layers.Dense(10),
    ]
)
model.compile(
    optimizer=keras.optimizers.Adam(1e-3),
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    metrics=["accuracy"],
)

tracker = TrackerCallback(
    bootstrap=os.environ.get("NNT_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    simulation_name="my own script",
    owner=OWNER,
    tags=["sdk"],
    epoch_period=1,
    collect=CollectSpec(dtype="float16"),  # half the bytes; float32 is lossless
    probe=(x[:64], y[:64]),  # the fixed batch for gradients and activations
)
model.fit(x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=15, callbacks=[tracker])
print(f"tracked as simulation {tracker.simulation_id}")
