"""bench/timescale.py's side-by-side table and flat keys, and bench/__main__.py keeping the
other benchmarks' results when only some run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench import timescale

pytestmark = pytest.mark.unit


def fake_result() -> dict[str, Any]:
    ts = {key: 2.0 for key in timescale.FIGURES} | {"raw_bytes_per_weight_value": 4.5,
                                                     "compress_s": 1.0}  # fmt: skip
    native = {key: 4.0 for key in timescale.FIGURES}
    return {
        "bench": "timescale", "simulations": 4, "epochs": 20, "parameters": 235146, "repeats": 7,
        "timescaledb_version": "2.29.2", "timescaledb": ts, "native": native,
        "ratio": {key: 0.5 for key in timescale.FIGURES},
    }  # fmt: skip


def test_it_gives_both_modes_and_their_ratio_as_flat_keys() -> None:
    flat = timescale.headline(fake_result())

    assert flat["timescaledb_bytes_per_weight"] == 2.0
    assert flat["native_bytes_per_weight"] == 4.0
    assert flat["timescaledb_vs_native_bytes_per_weight_ratio"] == 0.5
    assert flat["timescaledb_vs_native_chart_query_ratio"] == 0.5
    assert flat["timescaledb_vs_native_layer_history_query_ratio"] == 0.5
    assert len(flat) == 3 * len(timescale.HEADLINE)
    assert timescale.headline({"error": "boom"}) == {}


def test_it_prints_the_modes_side_by_side_with_the_ratio() -> None:
    text = timescale.table(fake_result())

    assert (
        "TimescaleDB 2.29.2 (columnstore) against native partitioning: 4 runs x 20 epochs" in text
    )
    assert "| bytes per weight value (nnt_tensor / full values) | 2 | 4 | 0.5 |" in text
    assert "| chart: a run's epoch metrics (s) | 2 | 4 | 0.5 |" in text
    assert "| uncompressed equivalent, bytes per weight value | 4.5 | - | - |" in text


def test_a_partial_run_keeps_the_other_results_and_reports_the_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results, report = tmp_path / "results.json", tmp_path / "benchmarks.md"
    results.write_text(json.dumps({
        "machine": {"at": "earlier"}, "details": {"storage": {"float16_bytes_per_value": 1.9}},
    }))  # fmt: skip
    monkeypatch.setattr(bench_main, "RESULTS", results)
    monkeypatch.setattr(bench_main, "REPORT", report)
    monkeypatch.setattr(bench_main, "run_one", lambda name: fake_result())

    assert bench_main.main(["timescale"]) == 0

    saved = json.loads(results.read_text())
    assert saved["details"]["storage"] == {"measured_at": "earlier", "float16_bytes_per_value": 1.9}
    assert saved["bytes_per_weight_fp16"] == 1.9
    assert saved["timescaledb_vs_native_bytes_per_weight_ratio"] == 0.5
    text = report.read_text()
    assert "## TimescaleDB against native partitioning" in text
    assert "| `bytes_per_weight_fp16` | 1.9 |" in text
    assert bench_main.main(["nosuch"]) == 2
