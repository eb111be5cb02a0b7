"""Subprocess of bench/latency.py and bench/concurrent.py: a small model trained with the tracker."""

from __future__ import annotations

import os
import sys
import uuid

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def main(bootstrap: str, simulation_id: str, owner: str, epochs: int, width: int = 16) -> None:
    """Announce the run, wait for the go file, then train `epochs` epochs (`width` hidden units)."""
    import time

    import keras
    import numpy as np

    from trainer.sdk import TrackerCallback

    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 16)).astype("float32")
    y = (x[:, 0] > 0).astype("int32")
    model = keras.Sequential(
        [
            keras.layers.Input((16,)),
            keras.layers.Dense(width, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer="adam",
        metrics=["accuracy"],
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    tracker = TrackerCallback(
        bootstrap,
        "latency benchmark",
        simulation_id=uuid.UUID(simulation_id),
        owner=owner,
        tags=["bench"],
        probe=(x[:32], y[:32]),
        total_epochs=epochs,
    )
    tracker.status("queued", 0, "waiting for the browser")
    tracker.publisher.flush()
    go = f"/tmp/nnt-latency-{simulation_id}.go"
    while not os.path.exists(go):
        time.sleep(0.1)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[tracker])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), *map(int, sys.argv[5:6]))
