"""bench/__main__.py: every key of issue 7 lands in results.json and the report."""

from __future__ import annotations

import pytest

from bench.__main__ import FIGURES, headline, report

pytestmark = pytest.mark.unit

KEYS = {
    "training_overhead_ratio", "tensorboard_overhead_ratio", "mlflow_overhead_ratio",
    "large_model_overhead_ratio", "large_model_selected_overhead_ratio", "diagnosis_cost_ratio",
    "live_latency_p95_s", "live_latency_p95_20_runs_s",
    "ingest_points_per_s", "ingest_two_workers_points_per_s", "ingest_vs_copy_ratio",
    "ingest_vs_mlflow_ratio", "ingest_vs_aim_ratio",
    "bytes_per_weight_fp16",
    "bytes_per_weight_lossless", "layer_history_query_s", "chart_query_s",
    "concurrent_runs_lag_ok",
}  # fmt: skip


def test_it_maps_every_benchmark_figure_to_its_results_key() -> None:
    assert set(FIGURES) == KEYS
    details: dict[str, dict[str, float]] = {}
    for bench, own, *_ in FIGURES.values():
        details.setdefault(bench, {})[own] = 1.5
    assert headline(details) == dict.fromkeys(KEYS, 1.5)


def test_it_reports_a_failed_benchmark_as_failed() -> None:
    details = {"storage": {"float16_bytes_per_value": 1.9}, "ingest": {"error": "boom"}}
    machine = {"at": "now", "cpus": 2, "platform": "linux", "python": "3.11", "kafka": "3.9.1",
               "packages": {}}  # fmt: skip
    text = report({"machine": machine, "headline": headline(details), "details": details})
    assert "| `bytes_per_weight_fp16` | 1.9 | <= 2.2 |" in text
    assert "| `ingest_points_per_s` | failed |" in text
