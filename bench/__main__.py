"""`python -m bench` (`make bench`): every benchmark against its peer, in one run.

Writes bench/results.json (the keys of issue 7, and TimescaleDB against native partitioning
side by side) and docs/benchmarks.md. Each benchmark runs in its own subprocess so one's
TensorFlow or event loop cannot disturb another's timings. `python -m bench NAME…` runs some
and keeps the others' last results (each benchmark's own `measured_at` says when).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results.json"
REPORT = ROOT / "docs" / "benchmarks.md"
BENCHMARKS = (
    "overhead",
    "large_model",
    "latency",
    "ingest",
    "storage",
    "queries",
    "concurrent",
    "timescale",
    "pages",
    "pathologies",
)
PACKAGES = (
    "tensorflow-cpu",
    "keras",
    "tensorboard",
    "mlflow",
    "aim",
    "faust-streaming",
    "aiokafka",
    "confluent-kafka",
    "psycopg",
    "django",
    "channels",
    "daphne",
    "zstandard",
    "numpy",
)


def run_one(name: str) -> dict[str, Any]:
    """Run bench.<name> in a subprocess; its last stdout line holding JSON is the result."""
    started = time.monotonic()
    code = f"import json, bench.{name} as m; print('RESULT ' + json.dumps(m.run()))"
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:], "wall_s": time.monotonic() - started}
    result = json.loads(lines[-1][len("RESULT ") :])
    result["wall_s"] = time.monotonic() - started
    result["measured_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return result


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import os

    versions: dict[str, str | None] = {}
    for pkg in PACKAGES:
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            versions[pkg] = None
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "kafka": "3.9.1",
        "packages": versions,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# bench/results.json key -> (benchmark, its own key, goal, peer, what limits the figure).
# fmt: off
FIGURES: dict[str, tuple[str, str, str, str, str]] = {
    "training_overhead_ratio": ("overhead", "training_overhead_ratio", "<= 1.05",
        "the same fit() without callbacks, same process, interleaved",
        "the probe-batch forward/backward pass, tensor encoding and Kafka delivery at every "
        "epoch end, plus the producer's start and final flush per run: a fixed cost per epoch "
        "that short epochs make look large"),
    "tensorboard_overhead_ratio": ("overhead", "tensorboard_overhead_ratio", "> ours",
        "TensorBoard's Keras callback, histogram_freq=1, same data and models",
        "TensorBoard writes histograms synchronously to disk at every epoch end"),
    "mlflow_overhead_ratio": ("overhead", "mlflow_overhead_ratio", "none (a peer)",
        "MLflow's own Keras callback (mlflow.keras.MlflowCallback in a run) to its default local "
        "store (SQLite), same data and models",
        "MLflow logs the 7 epoch metrics only (no weights, gradients or activations), "
        "asynchronously; its run start and end (params, model summary) per fit()"),
    "large_model_overhead_ratio": ("large_model", "large_model_overhead_ratio", "<= 1.05",
        "the same ResNet50 fit() (about 23.6M parameters, 32x32 images) uninstrumented, "
        "interleaved",
        "per epoch, whole weights and gradients (about 2 x 23.6M float32 values, 131 MB "
        "compressed: float32 statistics, zstd, HMAC, Kafka, and the broker on the same two "
        "cores) and the traced probe pass; the probe's trace at the first logged epoch; spectral "
        "fits every 6th logged epoch: a fixed cost per epoch, set against epochs of 2,304 "
        "images here (profile in the raw numbers)"),
    "large_model_selected_overhead_ratio": ("large_model",
        "large_model_selected_overhead_ratio",
        "< large_model_overhead_ratio",
        "the same ResNet50 fit() uninstrumented; the collection a user chose "
        "(CollectSpec: the last residual block and the classifier, full tensors every 5th epoch)",
        "only the chosen layers are read, diagnosed and sent (plus the classifier, the "
        "gradient ratios' reference): the probe's forward pass through the whole network (its "
        "trace, about 1.5 s, at the first logged epoch), and the last epoch's full tensors"),
    "diagnosis_cost_ratio": ("overhead", "diagnosis_cost_ratio", "<= 1.02",
        "our callback with collect.diagnose=false, same data and models",
        "one eigen-decomposition per kernel (the spectral evidence) and the rules, per logged "
        "epoch; the gradients and activations are computed anyway"),
    "live_latency_p95_s": ("latency", "live_latency_p95_s", "<= 0.5",
        "TensorBoard reloads every 5 s, MLflow's UI every 30 s (their refresh periods)",
        "the 0.1 s live throttle (a run logging faster than 10 epochs/s is coalesced), the "
        "worker's 10 ms quiet wait (NNT_STREAM_BATCH_IDLE) and the trainer producer's 20 ms linger"),
    "live_latency_p95_20_runs_s": ("latency", "live_latency_p95_20_runs_s", "<= 0.25",
        "the same path with one run (live_latency_p95_s); TensorBoard's 5 s and MLflow's 30 s "
        "refresh",
        "20 TensorFlow trainers, Kafka, the worker, the web and Chromium share the 2 cores; "
        "then the live throttle and batching as above"),
    "ingest_points_per_s": ("ingest", "ingest_points_per_s", ">= 100000",
        "a raw binary COPY of the same rows into the same database",
        "one worker spends about 3.5 us of CPU per point of 10-point events (nnt.epochs past "
        "Faust's streams, docs/stream-processing.md): decoding, binary COPY rows, live points "
        "and summaries; PostgreSQL, the broker and the producer share the two cores"),
    "ingest_two_workers_points_per_s": ("ingest", "ingest_two_workers_points_per_s", "> ingest_points_per_s",
        "one worker (ingest_points_per_s), same events of fresh runs",
        "two workers, PostgreSQL, the broker and the producer on 2 cores: nnt.epochs has 6 "
        "partitions, so workers on more cores add up"),
    "ingest_vs_copy_ratio": ("ingest", "ingest_vs_raw_copy_ratio", ">= 0.3",
        "a raw binary COPY of the same rows into the same database", "as above"),
    "ingest_vs_mlflow_ratio": ("ingest", "ingest_vs_mlflow_ratio", "> 1",
        "MLflow's tracking store (SqlAlchemyStore, log_batch of 1,000 metrics) in another "
        "database of the same PostgreSQL server: the first 20 runs (60,000 points)",
        "MLflow: one ORM round of INSERTs plus its latest_metrics update per log_batch, in the "
        "client's process"),
    "ingest_vs_aim_ratio": ("ingest", "ingest_vs_aim_ratio", "> 1",
        "Aim's local repository (aim.Run.track of each epoch's metrics): the first 20 runs",
        "Aim: Python-side encoding of every value into RocksDB, in the client's process"),
    "bytes_per_weight_fp16": ("storage", "float16_bytes_per_value", "<= 2.2",
        "the seed design's 6.7 bytes per value",
        "zstd on noisy low mantissa bits; index and row headers per 1 MiB chunk"),
    "bytes_per_weight_lossless": ("storage", "float32_bytes_per_value", "<= 4.2",
        "the seed design's 6.7 bytes per value", "as above"),
    "layer_history_query_s": ("queries", "layer_history_query_s", "<= 0.2",
        "a raw SELECT of the layer's 5M stored values",
        "histograms are computed by the trainer, so only statistics rows are read"),
    "chart_query_s": ("queries", "chart_query_s", "<= 0.1",
        "a raw SELECT of the 100k rows",
        "PostgreSQL's ordered scan of the series; it crosses packed in one bytea"),
    "concurrent_runs_lag_ok": ("concurrent", "concurrent_runs_lag_ok", "= 1",
        "the 20 trainers' own run time (drain time after the last exits)",
        "one worker process; 20 TensorFlow processes share the same 2 cores"),
}
# fmt: on


def headline(details: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The flat keys of bench/results.json (a figure whose benchmark failed is left out)."""
    return {
        key: details[bench][own]
        for key, (bench, own, *_) in FIGURES.items()
        if own in details.get(bench, {})
    }


def report(results: dict[str, Any]) -> str:
    """docs/benchmarks.md."""
    m = results["machine"]
    lines = [
        "# Benchmarks", "",
        f"Measured by `make bench` on {m['cpus']} CPUs ({m['platform']}), "
        f"Python {m['python']}, Kafka {m['kafka']}; last run {m['at']} (each benchmark's "
        "`measured_at` below says when it ran). Every figure is measured against its peer "
        "in the same run on the same data; none is a timed assertion in the test suite.", "",
        "| figure | value | goal | peer | what limits it |", "|---|---|---|---|---|",
    ]  # fmt: skip
    for key, (_, _, goal, peer, limit) in FIGURES.items():
        value = results["headline"].get(key, "failed")
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"| `{key}` | {shown} | {goal} | {peer} | {limit} |")
    modes = results["details"].get("timescale", {})
    if "ratio" in modes:
        from bench import timescale

        lines += ["", "## TimescaleDB against native partitioning", "", timescale.table(modes)]
    pages = results["details"].get("pages", {})
    if "layers" in pages:
        from bench import pages as page_bench

        lines += ["", "## Pages in Chromium: time to interactive", "", page_bench.table(pages)]
    suite = results["details"].get("pathologies", {})
    if "classes" in suite:
        from bench import pathologies

        lines += ["", "## Diagnoses on the pathology suite", "", pathologies.table(suite)]
    lines += [
        "",
        "Raw numbers per benchmark:",
        "",
        "```json",
        json.dumps(results["details"], indent=2),
        "```",
        "",
        "Package versions:",
        "",
        "```json",
        json.dumps(m["packages"], indent=2),
        "```",
        "",
    ]
    return "\n".join(lines)


def previous() -> dict[str, dict[str, Any]]:
    """The details of bench/results.json, each with when it was measured."""
    try:
        old = json.loads(RESULTS.read_text())
    except (OSError, ValueError):
        return {}
    at = old.get("machine", {}).get("at")
    return {name: {"measured_at": at, **d} for name, d in old.get("details", {}).items()}


def main(names: list[str]) -> int:
    """Run the named benchmarks (default: all) and write the results; a partial run keeps
    the other benchmarks' last results."""
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        print(f"bench: no benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
        return 2
    ran = {}
    for name in names or BENCHMARKS:
        print(f"bench: {name} ...", flush=True)
        ran[name] = run_one(name)
        print(json.dumps(ran[name], indent=2), flush=True)
        if name == "timescale" and "ratio" in ran[name]:
            from bench import timescale

            print(timescale.table(ran[name]), flush=True)
        if name == "pages" and "layers" in ran[name]:
            from bench import pages

            print(pages.table(ran[name]), flush=True)
    kept = previous() if names else {}
    details = {n: ran[n] if n in ran else kept[n] for n in BENCHMARKS if n in ran or n in kept}
    results = {"machine": machine(), "headline": headline(details), "details": details}
    from bench import pages, timescale

    flat = {
        **results["headline"],
        **timescale.headline(details.get("timescale", {})),
        **pages.headline(details.get("pages", {})),
    }
    RESULTS.write_text(
        json.dumps({**flat, "machine": results["machine"], "details": details}, indent=2) + "\n"
    )
    REPORT.write_text(report(results))
    print(json.dumps(flat, indent=2))
    return 0 if all("error" not in d for d in ran.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
