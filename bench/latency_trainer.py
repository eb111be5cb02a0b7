"""Subprocess of bench/latency.py and bench/concurrent.py: a small model trained with the tracker.

It announces its run, says it is ready (READY file) and trains once released (GO file), so
that many trainers, TensorFlow imported, start streaming together.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def ready_file(simulation_id: str) -> Path:
    """Touched by the trainer once its run is announced and it waits for GO."""
    return Path(f"/tmp/nnt-latency-{simulation_id}.ready")


def go_file(simulation_id: str) -> Path:
    """Touched by the benchmark to start the trainer's `fit`."""
    return Path(f"/tmp/nnt-latency-{simulation_id}.go")


def wait_ready(sims: list[str], procs: list[subprocess.Popen[bytes]], timeout: float) -> float:
    """Block until every trainer is ready (or fail naming how many are not); seconds waited."""
    t0 = time.monotonic()
    while not all(ready_file(sid).exists() for sid in sims):
        dead = [p.returncode for p in procs if p.poll() is not None]
        assert not dead, f"{len(dead)} trainers exited before training: {dead}"
        waiting = sum(not ready_file(sid).exists() for sid in sims)
        assert time.monotonic() - t0 < timeout, f"{waiting} trainers not ready in {timeout} s"
        time.sleep(0.2)
    return time.monotonic() - t0


def release(sims: list[str]) -> None:
    """Start every waiting trainer at once."""
    for sid in sims:
        go_file(sid).touch()


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """End the trainers still running (a failed benchmark leaves none behind)."""
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def clean(sims: list[str]) -> None:
    """Remove the trainers' READY and GO files."""
    for sid in sims:
        ready_file(sid).unlink(missing_ok=True)
        go_file(sid).unlink(missing_ok=True)


def main(bootstrap: str, simulation_id: str, owner: str, epochs: int, width: int = 16) -> None:
    """Announce the run, wait for the go file, then train `epochs` epochs (`width` hidden units)."""
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
    ready_file(simulation_id).touch()
    while not go_file(simulation_id).exists():
        time.sleep(0.1)
    model.fit(x, y, epochs=epochs, batch_size=64, verbose=0, callbacks=[tracker])


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), *map(int, sys.argv[5:6]))
