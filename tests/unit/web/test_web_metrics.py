"""LTTB downsampling, grouping and tables of epoch metrics."""

from __future__ import annotations

import math
import struct

from web.simulations.metrics import (
    downsample,
    lttb_indexes,
    ordered_names,
    table,
    unpack,
)


def test_it_keeps_everything_under_the_limit() -> None:
    assert lttb_indexes([1, 2, 3, 4, 5], [1.0] * 5, None) == [0, 1, 2, 3, 4]
    assert lttb_indexes([1, 2, 3, 4, 5], [1.0] * 5, 10) == [0, 1, 2, 3, 4]


def test_it_keeps_first_last_and_a_spike_when_downsampling() -> None:
    xs = list(range(1000))
    ys = [1.0 / (x + 1) for x in xs]
    ys[500] = 9.0
    kept = lttb_indexes(xs, ys, 10)
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 999 and 500 in kept
    assert kept == sorted(kept)


def test_it_handles_tiny_limits_and_missing_values() -> None:
    xs = list(range(7))
    assert lttb_indexes(xs, [1.0] * 7, 1) == [6]
    assert lttb_indexes(xs, [1.0] * 7, 0) == []
    assert lttb_indexes(xs, [1.0] * 7, 2) == [0, 6]
    assert lttb_indexes(xs, [None, 1.0, None, 2.0, None, 3.0, None], 4) == [1, 3, 5]


def test_it_downsamples_every_list_of_a_series_together() -> None:
    series = {
        "epochs": list(range(100)),
        "a": [float(i) for i in range(100)],
        "diff": [float(i % 7) for i in range(100)],
    }
    out = downsample(series, 10, by="diff")
    assert len(out["epochs"]) == 10 and out["a"] == [float(e) for e in out["epochs"]]


def test_it_orders_metrics_and_builds_tables() -> None:
    series = {
        "val_auc": {"epochs": [1], "values": [0.6]},
        "loss": {"epochs": [1], "values": [1.0]},
        "auc": {"epochs": [1], "values": [0.5]},
        "learning_rate": {"epochs": [1], "values": [0.1]},
        "accuracy": {"epochs": [2], "values": [0.9]},
    }
    assert ordered_names(series) == (["loss", "accuracy"], ["auc", "val_auc"])
    assert table(series, ["loss", "accuracy"]) == [
        {"epoch": 1, "loss": 1.0},
        {"epoch": 2, "accuracy": 0.9},
    ]


def packed(rows: list[tuple[int, float]]) -> bytes:
    """What store.metrics.PACKED_SQL packs: int4send(epoch) || float8send(value) per row."""
    return b"".join(struct.pack(">id", e, v) for e, v in rows)


def test_it_keeps_the_newest_value_of_a_repeated_epoch() -> None:
    data = packed([(1, 1.0), (2, 2.0), (2, 2.5), (3, math.nan)])
    assert unpack(data) == {"epochs": [1, 2, 3], "values": [1.0, 2.5, None]}


def test_it_downsamples_copy_rows_with_lttb_and_keeps_a_spike() -> None:
    rows = [(e, 1.0 / e) for e in range(1, 100_001)]
    rows[49_999] = (50_000, 7.0)
    series = unpack(packed(rows), 2000)
    assert len(series["epochs"]) == 2000
    assert series["epochs"][0] == 1 and series["epochs"][-1] == 100_000
    assert 50_000 in series["epochs"] and 7.0 in series["values"]
    assert unpack(packed([]), 10) == {"epochs": [], "values": []}
