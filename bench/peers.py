"""The trackers people would pick instead, logging the same epoch points as bench/ingest.py.

MLflow's tracking store (SqlAlchemyStore through `MlflowClient`) in its own database on the
same PostgreSQL server, `log_batch` of up to 1,000 metrics per call (MLflow's limit); Aim's
local repository (`aim.Run(repo=...)`, one `track` of an epoch's metrics per call). Each
creates its runs, logs every point of each and ends them; the points are read back and
counted, so a peer that dropped some fails instead of looking fast. Both are clients writing
straight to their store (no broker): the figure is what a user's script waits for.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import tempfile
import time
import traceback
import uuid
from collections import defaultdict
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from schemas.epochs import EpochEvent

MLFLOW_BATCH = 1000  # MLflow's cap on metrics per log_batch


def by_run(batch: list[EpochEvent]) -> dict[uuid.UUID, list[EpochEvent]]:
    """The events of each simulation, in epoch order."""
    out: dict[uuid.UUID, list[EpochEvent]] = defaultdict(list)
    for event in batch:
        out[event.simulation_id].append(event)
    return dict(out)


@contextlib.contextmanager
def side_database(url: str, prefix: str) -> Iterator[str]:
    """A fresh database on the server of `url` (dropped afterwards); its SQLAlchemy URL with
    the psycopg 3 driver, so MLflow needs no psycopg2."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    try:
        yield urlunsplit(("postgresql+psycopg", parts.netloc, f"/{name}", parts.query, ""))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def mlflow_ingest(url: str, batch: list[EpochEvent]) -> dict[str, Any]:
    """Points/s of MLflow's tracking store on the PostgreSQL server of `url`."""
    import mlflow
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    runs = by_run(batch)
    metrics = {
        sid: [
            Metric(name, value, int(e.at.timestamp() * 1000), e.epoch)
            for e in events
            for name, value in e.points().items()
        ]
        for sid, events in runs.items()
    }  # built before the clock starts, as bench/ingest.py signs its messages beforehand
    points = sum(map(len, metrics.values()))
    with side_database(url, "nnt_bench_mlflow") as uri, tempfile.TemporaryDirectory() as art:
        client = MlflowClient(tracking_uri=uri)  # creates MLflow's tables: not timed
        experiment = client.create_experiment("nnt-bench-ingest", artifact_location=f"file://{art}")
        t0 = time.perf_counter()
        ids = []
        for series in metrics.values():
            run_id = client.create_run(experiment).info.run_id
            for i in range(0, len(series), MLFLOW_BATCH):
                client.log_batch(run_id, metrics=series[i : i + MLFLOW_BATCH])
            client.set_terminated(run_id)
            ids.append(run_id)
        seconds = time.perf_counter() - t0
        names = {m.key for m in next(iter(metrics.values()))}
        stored = sum(len(client.get_metric_history(r, n)) for r in ids for n in names)
    assert stored == points, f"MLflow stored {stored} of {points} points"
    return {
        "version": mlflow.__version__,
        "store": "SqlAlchemyStore, postgresql+psycopg, same server",
        "runs": len(runs),
        "points": points,
        "seconds": round(seconds, 2),
        "points_per_s": round(points / seconds),
    }


def aim_ingest(batch: list[EpochEvent]) -> dict[str, Any]:
    """Points/s of Aim's local repository (an error and the reason when Aim cannot run)."""
    try:
        import aim
    except Exception:  # no wheel for this platform, or a broken install: say which
        return {"error": traceback.format_exc(limit=1)[-500:]}
    runs = by_run(batch)
    steps = {sid: [(e.epoch, e.points()) for e in events] for sid, events in runs.items()}
    points = sum(len(p) for series in steps.values() for _, p in series)
    quiet = {"system_tracking_interval": None, "log_system_params": False,
             "capture_terminal_logs": False}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="nnt-bench-aim-") as repo:
        store = aim.Repo.from_path(repo, init=True)  # `aim init`: not timed
        t0 = time.perf_counter()
        hashes = []
        for series in steps.values():
            run = aim.Run(repo=repo, experiment="nnt-bench-ingest", **quiet)
            for epoch, values in series:
                run.track(values, step=epoch)
            hashes.append(run.hash)
            run.close()
        seconds = time.perf_counter() - t0
        stored = 0
        for run_hash in hashes:  # read-only runs read Aim's index, which only its UI updates
            run = aim.Run(run_hash, repo=repo, **quiet)
            stored += sum(len(m.values.values_list()) for m in run.metrics())
            run.close()
        del run
        gc.collect()  # Aim's RocksDB handles flush when collected: before the folder goes
        store.close()
    assert stored == points, f"Aim stored {stored} of {points} points"
    return {
        "version": aim.__version__.__version__,
        "store": "local repository (RocksDB) in a temporary directory",
        "runs": len(runs),
        "points": points,
        "seconds": round(seconds, 2),
        "points_per_s": round(points / seconds),
    }


def mlflow_keras_callback() -> Any:
    """MLflow's own Keras callback (`mlflow.keras.MlflowCallback`: optimizer params and the
    model summary at the start, the metrics every epoch) inside a run of its own, as a user
    writes `with mlflow.start_run(): model.fit(..., callbacks=[MlflowCallback()])`."""
    import mlflow
    from mlflow.keras import MlflowCallback

    class InItsRun(MlflowCallback):  # type: ignore[misc]
        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            mlflow.start_run()
            super().on_train_begin(logs)

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            super().on_train_end(logs)
            mlflow.end_run()  # waits for the metrics logged asynchronously

    return InItsRun()


@contextlib.contextmanager
def mlflow_local_store() -> Iterator[str]:
    """MLflow's default local store (SQLite, `sqlite:///mlflow.db`) in a temporary directory,
    its tables made and its experiment set before any clock starts; yields the URI."""
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="nnt-bench-mlflow-") as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        try:
            experiment = mlflow.create_experiment("nnt-bench", artifact_location=f"file://{tmp}/a")
            mlflow.set_experiment(experiment_id=experiment)
            yield uri
        finally:
            mlflow.set_tracking_uri(None)
