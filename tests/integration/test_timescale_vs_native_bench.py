"""bench/timescale.py at its smallest on the session's server: both modes are filled with the
same runs, measured side by side, and their databases dropped (no timing is asserted)."""

from __future__ import annotations

import psycopg

from bench import timescale


def test_it_measures_both_modes_on_the_same_rows_and_cleans_up(
    pg_url: str, timescaledb: str
) -> None:
    result = timescale.measure(pg_url, simulations=1, epochs=2)

    assert result["timescaledb_version"] == timescaledb
    values = 2 * timescale.parameters() * 1 * 2  # weights, biases and their gradients
    for mode in timescale.MODES:
        figures = result[mode]
        assert figures["mode"] == mode and figures["weight_values"] == values
        assert figures["metric_points"] == 2 * (10 + 2 * timescale.BATCH_STEPS)
        # float32 through zstd: a few bytes per value, never less than the values' entropy
        assert 2 < figures["bytes_per_weight_value"] < 8
        assert all(figures[key] > 0 for key in timescale.FIGURES)
    assert result["native"]["tensor_raw_bytes"] == result["native"]["tensor_bytes"]
    assert result["timescaledb"]["compress_s"] > 0
    assert set(result["ratio"]) == set(timescale.FIGURES)
    with psycopg.connect(pg_url) as conn:
        left = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'nnt_bench_%'"
        ).fetchall()
    assert left == []
