"""Instrument your own Keras script: the run appears in NN Tracker like any other.

Run it against a local stack (`make up` in another terminal), with an API token of your
account (`POST /api/tokens`, or the account page):

    NNT_TOKEN=... .venv/bin/python docs/examples/own_script.py

then open http://127.0.0.1:8000/simulations/ as that user. The web creates the run for you
(`POST /api/sdk-runs`) and hands out the key its events are signed with: the stream workers
store only events signed by their own run.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

from trainer.sdk import CollectSpec, register_run  # noqa: E402

URL = os.environ.get("NNT_URL", "http://127.0.0.1:8000")
TOKEN = os.environ["NNT_TOKEN"]
EPOCHS = 15

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

run = register_run(URL, TOKEN, name="my own script", tags=["sdk"], total_epochs=EPOCHS)
tracker = run.tracker(
    bootstrap=os.environ.get("NNT_KAFKA_BOOTSTRAP", "127.0.0.1:9092"),
    epoch_period=1,
    collect=CollectSpec(dtype="float16"),  # half the bytes; float32 is lossless
    probe=(x[:64], y[:64]),  # the fixed batch for gradients and activations
)
model.fit(
    x[:1400], y[:1400], validation_data=(x[1400:], y[1400:]), epochs=EPOCHS, callbacks=[tracker]
)
print(f"tracked as simulation {run.simulation_id}: {URL}/simulations/{run.simulation_id}/")
