"""TimescaleDB's columnstore against native partitioning, on the same server in one run.

Two databases of one PostgreSQL: one with the TimescaleDB schema, one forced native
(`infra.timeseries.apply(url, timescaledb=False)`). Both get the same runs, written through
the stream workers' sink (one binary COPY per batch, as the tensors and epochs agents do):
N simulations of an MLP (784-256-128-10, 235,146 parameters) over E epochs, each epoch its
kernels, biases and their gradients in full (the trainer's zstd encoding, 1 MiB chunks),
activations as statistics only, 10 epoch metrics and 2 batch-level series of 50 steps. The
runs are 40 days old, so TimescaleDB's policy would have compressed them; the benchmark
compresses every chunk itself. Then, side by side:
- storage: `nntracker db status`'s table sizes (heap, TOAST, indexes), per full weight value
  stored and per run and epoch;
- the web's chart queries, by their own SQL (store/metrics.py, tensors.py, run with
  psycopg: the database's share of a request), median of REPEATS after a warm-up: a run's
  epoch metrics, one layer's kernel statistics over its epochs (the layer history), one full
  kernel at one epoch, and that kernel at every epoch (the 3-D view).

`python -m bench.timescale [--simulations N] [--epochs E] [--large]` prints the table and
the JSON; `make bench` runs the default size (under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import psycopg

from bench import timing
from infra import dbstatus
from schemas.epochs import BatchPoint, EpochEvent
from schemas.tensors import Kind, TensorHeader, decode_array, unpack
from store.sink import Sink
from store.tables import PARTITIONED, Row, Table
from stream_processors import rows
from trainer import stats
from trainer.reporting import tensor_messages

LAYERS = ((784, 256), (256, 128), (128, 10))
SIMULATIONS, EPOCHS = 4, 20  # the default size (about 150 MB per database); --large: 10 x 50
LARGE = (10, 50)
REPEATS = 7
AGE = timedelta(days=40)  # past the 32-day columnstore policy of nnt_tensor
EPOCH_EVERY = timedelta(seconds=30)
METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "precision", "recall", "auc")
BATCH_STEPS = 50
MODES = ("timescaledb", "native")
# The figures of each mode, with how the report shows them.
FIGURES = {
    "bytes_per_weight_value": "bytes per weight value (nnt_tensor / full values)",
    "bytes_per_run_epoch": "bytes per run and epoch (nnt_tensor)",
    "metric_bytes_per_point": "bytes per epoch or batch metric point",
    "timeseries_bytes": "time-series tables, bytes on disk",
    "chart_query_s": "chart: a run's epoch metrics (s)",
    "layer_history_query_s": "layer history: a kernel's statistics over epochs (s)",
    "tensor_fetch_s": "one full kernel at one epoch (s)",
    "layer_values_query_s": "one kernel at every epoch (s)",
    "write_s": "write the runs through the sink (s)",
    "status_s": "`nntracker db status` (s)",
}


@dataclass(frozen=True)
class Run:
    """One simulation's identity and start time."""

    sid: uuid.UUID
    t0: datetime


def parameters() -> int:
    """Weights and biases of the model."""
    return sum(i * o + o for i, o in LAYERS)


def tensor(
    run: Run, epoch: int, layer: int, kind: Kind, variable: str, array: np.ndarray | None,
    source: np.ndarray,
) -> list[Row]:  # fmt: skip
    """One tensor's nnt_tensor rows, as the trainer sends it and the worker stores it
    (`array` None: statistics only)."""
    header = TensorHeader(
        simulation_id=run.sid, epoch=epoch, layer_index=layer, layer_name=f"dense_{layer}",
        kind=kind, variable=variable, dtype="float32", stats=stats.tensor_stats(source),
        at=run.t0 + epoch * EPOCH_EVERY,
    )  # fmt: skip
    return [rows.tensor_row(*unpack(message)) for message in tensor_messages(header, array)]


def tensor_rows(run: Run, epochs: int, seed: int) -> Iterator[list[Row]]:
    """Each epoch's nnt_tensor rows: kernels, biases and their gradients in full (a training
    step's worth of change between epochs), activations as statistics only."""
    rng = np.random.default_rng(seed)
    weights: dict[tuple[int, Kind], np.ndarray] = {}
    for i, (n_in, n_out) in enumerate(LAYERS):
        limit = np.sqrt(6 / (n_in + n_out))
        weights[(i, "kernel")] = rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32)
        weights[(i, "bias")] = np.zeros(n_out, np.float32)
    for epoch in range(1, epochs + 1):
        out: list[Row] = []
        for (layer, kind), value in weights.items():
            grad = rng.normal(0, 1e-3, value.shape).astype(np.float32)
            value -= 0.5 * grad + rng.normal(0, 1e-4, value.shape).astype(np.float32)
            variable = f"dense_{layer}/{kind}"
            out += tensor(run, epoch, layer, kind, variable, value, value)
            out += tensor(run, epoch, layer, "gradient", variable, grad, grad)
        for layer, (_, n_out) in enumerate(LAYERS):
            act = np.maximum(rng.normal(0, 1, (64, n_out)), 0).astype(np.float32)
            out += tensor(run, epoch, layer, "activation", f"dense_{layer}/output", None, act)
        yield out


def metric_rows(run: Run, epochs: int) -> tuple[list[Row], list[Row]]:
    """nnt_epoch_metric and nnt_batch_metric rows of the run, from its epoch events."""
    events = [
        EpochEvent(
            simulation_id=run.sid, epoch=e, total_epochs=epochs, learning_rate=1e-3,
            epoch_time_s=2.5, samples_per_s=24_000.0, at=run.t0 + e * EPOCH_EVERY,
            metrics={m: 1.0 / (e + i) for i, m in enumerate(METRICS)},
            batches=[BatchPoint(step=s, metrics={"loss": 1.0 / (e + s / BATCH_STEPS),
                                                 "accuracy": 1 - 1 / (e + 1 + s)})
                     for s in range(BATCH_STEPS)],
        )
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    return rows.epoch_rows(events), rows.batch_rows(events)


async def _write(url: str, batches: Iterator[tuple[Table, list[Row]]]) -> None:
    sink = Sink(url)
    try:
        for table, batch in batches:

            async def work(conn: psycopg.AsyncConnection[tuple]) -> int:
                return await sink.copy(conn, table, batch)  # noqa: B023 - awaited at once

            await sink.run(work)
    finally:
        await sink.close()


def write(urls: list[str], runs: list[Run], epochs: int) -> dict[str, float]:
    """The same rows into every database, batch by batch; seconds of COPY per database."""
    spent = dict.fromkeys(urls, 0.0)

    def batches() -> Iterator[tuple[Table, list[Row]]]:
        for n, run in enumerate(runs):
            epoch_rows, batch_rows = metric_rows(run, epochs)
            yield rows.EPOCH_METRIC, epoch_rows
            yield rows.BATCH_METRIC, batch_rows
            for tensors in tensor_rows(run, epochs, seed=n):
                yield rows.TENSOR, tensors

    for table, batch in batches():
        for url in urls:
            t0 = time.perf_counter()
            asyncio.run(_write(url, iter([(table, batch)])))
            spent[url] += time.perf_counter() - t0
    return spent


def compress(url: str) -> float:
    """Every chunk of every hypertable into the columnstore; seconds taken."""
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        for table in PARTITIONED:
            conn.execute(
                "SELECT compress_chunk(c, if_not_compressed => true) FROM show_chunks(%s) c",
                (table,),
            )
    return time.perf_counter() - t0


def queries(url: str, sid: uuid.UUID, epochs: int) -> dict[str, float]:
    """The web's chart reads of one run, by the web's own SQL, timed."""
    from store import metrics, tensors  # the web's SQL
    from web.simulations.metrics import unpack  # Django itself is not set up

    kernel = (sid, 0, "kernel", "dense_0/kernel")
    history_sql = tensors.STATS_SQL.format(stats="stats", clauses=tensors.KIND_CLAUSE)
    with psycopg.connect(url, autocommit=True) as conn:

        def chart() -> None:
            for _, data in conn.execute(metrics.PACKED_SQL, (sid,)).fetchall():
                unpack(bytes(data), 2000)

        def history() -> None:
            found = conn.execute(history_sql, (sid, "kernel")).fetchall()
            assert len(found) == epochs * len(LAYERS), len(found)

        def fetch(epoch: int) -> np.ndarray:
            parts = conn.execute(tensors.CHUNKS_SQL, (*kernel, epoch)).fetchall()
            newest = [p for p in parts if p[6] == parts[0][6]]
            _, _, dtype, shape, codec, _, _ = newest[0]
            data = b"".join(bytes(p[5]) for p in sorted(newest, key=lambda p: p[0]))
            return decode_array(data, dtype, list(shape), codec)

        def values() -> None:
            for (epoch,) in conn.execute(tensors.EPOCHS_SQL, kernel).fetchall():
                fetch(epoch)

        assert fetch(epochs // 2 + 1).shape == LAYERS[0]
        return {
            "chart_query_s": _median_s(chart),
            "layer_history_query_s": _median_s(history),
            "tensor_fetch_s": _median_s(lambda: fetch(epochs // 2 + 1)),
            "layer_values_query_s": _median_s(values),
        }


def storage(url: str, runs: int, epochs: int) -> dict[str, Any]:
    """Sizes from `nntracker db status`, per stored full weight value and per run-epoch."""
    t0 = time.perf_counter()
    status = dbstatus.collect(url)
    spent = time.perf_counter() - t0
    by_name = {t.table: t for t in status.tables}
    tensor = by_name["nnt_tensor"]
    series = [by_name["nnt_epoch_metric"], by_name["nnt_batch_metric"]]
    values = 2 * parameters() * runs * epochs  # weights and biases, and their gradients
    return {
        "mode": status.mode,
        "weight_values": values,
        "tensor_bytes": tensor.bytes,
        "tensor_raw_bytes": tensor.raw_bytes,
        "bytes_per_weight_value": tensor.bytes / values,
        "raw_bytes_per_weight_value": tensor.raw_bytes / values,
        "bytes_per_run_epoch": tensor.bytes / (runs * epochs),
        "metric_points": sum(t.rows for t in series),
        "metric_bytes_per_point": sum(t.bytes for t in series) / sum(t.rows for t in series),
        "timeseries_bytes": status.total.bytes,
        "timeseries_raw_bytes": status.total.raw_bytes,
        "status_s": spent,
    }


def measure(base_url: str, simulations: int = SIMULATIONS, epochs: int = EPOCHS) -> dict[str, Any]:
    """Both databases on the server of `base_url`, filled, compressed, measured, dropped."""
    from tests.timeseries_data import new_database

    urls = {
        "timescaledb": new_database(base_url, "nnt_bench_ts", timescaledb=True),
        "native": new_database(base_url, "nnt_bench_native", timescaledb=False),
    }
    try:
        start = datetime.now(UTC) - AGE
        runs = [Run(uuid.uuid4(), start + timedelta(hours=i)) for i in range(simulations)]
        spent = write(list(urls.values()), runs, epochs)
        compress_s = compress(urls["timescaledb"])
        result: dict[str, Any] = {
            "bench": "timescale",
            "simulations": simulations,
            "epochs": epochs,
            "parameters": parameters(),
            "repeats": REPEATS,
        }
        for mode, url in urls.items():
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute("VACUUM ANALYZE")
            figures = storage(url, simulations, epochs)
            assert figures["mode"] == mode, figures["mode"]
            figures.update(queries(url, runs[simulations // 2].sid, epochs))
            figures["write_s"] = spent[url]
            result[mode] = figures
        result["timescaledb"]["compress_s"] = compress_s
        with psycopg.connect(urls["timescaledb"]) as conn:
            row = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
            result["timescaledb_version"] = str((row.fetchone() or ("?",))[0])
        result["ratio"] = {
            key: result["timescaledb"][key] / result["native"][key]
            for key in FIGURES
            if result["native"][key]
        }
        return result
    finally:
        with psycopg.connect(base_url, autocommit=True) as conn:
            for url in urls.values():
                name = urlsplit(url).path.lstrip("/")
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table(result: dict[str, Any]) -> str:
    """The side-by-side table (markdown), with the ratio TimescaleDB / native."""
    ts, native, ratio = result["timescaledb"], result["native"], result["ratio"]
    lines = [
        f"TimescaleDB {result.get('timescaledb_version', '?')} (columnstore) against native "
        f"partitioning: {result['simulations']} runs x {result['epochs']} epochs of a "
        f"{result['parameters']:,}-parameter MLP, same server, same rows; queries: median of "
        f"{result['repeats']}.",
        "",
        "| figure | TimescaleDB | native | TimescaleDB / native |",
        "|---|---|---|---|",
    ]
    for key, label in FIGURES.items():
        times = f"{ratio[key]:.3g}" if key in ratio else "-"
        lines.append(f"| {label} | {_shown(ts[key])} | {_shown(native[key])} | {times} |")
    lines.append(
        f"| uncompressed equivalent, bytes per weight value | "
        f"{_shown(ts['raw_bytes_per_weight_value'])} | - | - |"
    )
    lines.append(f"| compress every chunk (s) | {_shown(ts['compress_s'])} | - | - |")
    return "\n".join(lines)


# bench/results.json's flat keys: (this benchmark's figure, its key there).
HEADLINE = {
    "bytes_per_weight_value": "bytes_per_weight",
    "chart_query_s": "chart_query_s",
    "layer_history_query_s": "layer_history_query_s",
    "tensor_fetch_s": "tensor_fetch_s",
}


def headline(result: dict[str, Any]) -> dict[str, float]:
    """Both modes' figures and their ratio, flat: timescaledb_X, native_X,
    timescaledb_vs_native_X_ratio (nothing when the benchmark failed)."""
    if "ratio" not in result:
        return {}
    out = {}
    for own, key in HEADLINE.items():
        for mode in MODES:
            out[f"{mode}_{key}"] = result[mode][own]
        if own in result["ratio"]:
            out[f"timescaledb_vs_native_{key.removesuffix('_s')}_ratio"] = result["ratio"][own]
    return out


def _shown(value: float) -> str:
    if isinstance(value, int) or value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.4g}"


def run(simulations: int = SIMULATIONS, epochs: int = EPOCHS) -> dict[str, Any]:
    """A fresh PostgreSQL (or NNT_TEST_DATABASE_URL's server), both modes measured on it."""
    from bench.ingest import database

    with database() as url:
        return measure(url, simulations, epochs)


def main() -> None:
    """Command line: the size, then the table and the JSON."""
    p = argparse.ArgumentParser(prog="python -m bench.timescale", description=__doc__)
    p.add_argument("--simulations", type=int, default=SIMULATIONS)
    p.add_argument("--epochs", type=int, default=EPOCHS)
    p.add_argument("--large", action="store_true", help=f"{LARGE[0]} runs x {LARGE[1]} epochs")
    args = p.parse_args()
    sims, epochs = LARGE if args.large else (args.simulations, args.epochs)
    result = run(sims, epochs)
    print(table(result))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()


def _median_s(call: Callable[[], object]) -> float:
    return timing.median_s(call, REPEATS)
