"""Twenty runs streaming at once: does one stream worker keep up?

RUNS trainer processes (bench/latency_trainer.py: the tracker collecting weights, biases,
gradients and activations every epoch) stream to a real Kafka broker, released together once
each has imported TensorFlow (`ready_s`); one real Faust worker persists them into a real
PostgreSQL. `concurrent_runs_lag_ok` is 1 when, after
the last trainer exits, the worker's consumer lag on nnt.epochs and nnt.tensors returns to
zero within DRAIN_S seconds and every epoch of every run is in the database exactly once.
The peer is the trainers themselves: `drain_s` (lag zero after the last trainer's exit) is
set against `train_s` (release to last exit). `python -m bench.concurrent` prints JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from bench.ingest import database, lag
from bench.latency_trainer import clean, release, stop, wait_ready
from bench.services import command_secret, kafka, run_key
from schemas import topics

RUNS = 20
EPOCHS = 30
WIDTH = 64
DRAIN_S = 60.0
READY_S = 600.0  # twenty TensorFlow imports on two cores
ROOT = Path(__file__).resolve().parent.parent


def stored(url: str, sims: list[str]) -> tuple[int, int]:
    """(rows, distinct (simulation, epoch)) of the runs' loss in nnt_epoch_metric."""
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT count(*), count(DISTINCT (simulation_id, epoch)) FROM nnt_epoch_metric "
            "WHERE metric = 'loss' AND simulation_id = ANY(%s::uuid[])",
            (sims,),
        ).fetchone()
    return int(row[0]), int(row[1])  # type: ignore[index]


def total_lag(bootstrap: str) -> int:
    """The worker group's lag on the two heavy topics."""
    return lag(bootstrap, topics.EPOCHS) + lag(bootstrap, topics.TENSORS)


def train_all(bootstrap: str, sims: list[str]) -> tuple[float, float, int]:
    """Start every trainer, release them together once all are ready; (seconds they took to
    be ready, seconds from the release to the last exit, max lag seen)."""
    cmd = [sys.executable, "-m", "bench.latency_trainer", bootstrap]
    procs = [
        subprocess.Popen([*cmd, sid, "bench", str(EPOCHS), str(WIDTH)], cwd=ROOT,
                         env={**os.environ, "NNT_RUN_KEY": run_key(sid)},  # as the orchestrator
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for sid in sims
    ]  # fmt: skip
    try:
        ready_s = wait_ready(sims, procs, READY_S)  # TensorFlow imported before the race
        t0 = time.perf_counter()
        release(sims)
        peak = 0
        while any(p.poll() is None for p in procs):
            peak = max(peak, total_lag(bootstrap))
            time.sleep(1.0)
    finally:
        stop(procs)
    failed = [p.returncode for p in procs if p.returncode != 0]
    assert not failed, f"{len(failed)} trainers failed: {failed}"
    return ready_s, time.perf_counter() - t0, peak


def measure(bootstrap: str, url: str, home: Path) -> dict[str, Any]:
    """Run the race and the drain; return the figures."""
    from tests.streamworker import Worker

    sims = [str(uuid.uuid4()) for _ in range(RUNS)]
    command_secret()  # in the environment before the worker starts: it checks the trainers' keys
    worker = Worker(bootstrap, url, home / "worker")
    try:
        worker.wait_ready()
        ready_s, train_s, peak = train_all(bootstrap, sims)
        t0 = time.perf_counter()
        while (left := total_lag(bootstrap)) > 0 and time.perf_counter() - t0 < DRAIN_S:
            time.sleep(0.5)
        drain_s = time.perf_counter() - t0
        time.sleep(1.0)  # the last batch's rows are committed before its offsets
        rows, distinct = stored(url, sims)
    finally:
        worker.stop()
        clean(sims)
    ok = left == 0 and rows == distinct == RUNS * EPOCHS
    return {
        "bench": "concurrent", "runs": RUNS, "epochs": EPOCHS, "hidden_units": WIDTH,
        "ready_s": round(ready_s, 2), "train_s": round(train_s, 2), "drain_s": round(drain_s, 2), "peak_lag": peak,
        "lag_left": left, "loss_rows": rows, "loss_rows_expected": RUNS * EPOCHS,
        "concurrent_runs_lag_ok": int(ok), "load_average": os.getloadavg()[0],
    }  # fmt: skip


def run() -> dict[str, Any]:
    """Fresh Kafka and PostgreSQL (or the NNT_TEST_* ones), then measure."""
    with kafka() as bootstrap, database() as url, tempfile.TemporaryDirectory() as home:
        return measure(bootstrap, url, Path(home))


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
