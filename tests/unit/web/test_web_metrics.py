"""Downsampling and grouping of epoch metrics."""

from __future__ import annotations

from web.simulations.metrics import downsample_indexes, group


def test_it_keeps_everything_under_the_limit() -> None:
    assert downsample_indexes(5, None) == [0, 1, 2, 3, 4]
    assert downsample_indexes(5, 10) == [0, 1, 2, 3, 4]


def test_it_keeps_first_and_last_when_downsampling() -> None:
    kept = downsample_indexes(1000, 10)
    assert len(kept) == 10 and kept[0] == 0 and kept[-1] == 999
    assert kept == sorted(kept)


def test_it_handles_tiny_limits() -> None:
    assert downsample_indexes(7, 1) == [6]
    assert downsample_indexes(7, 0) == []


def test_it_groups_rows_per_metric() -> None:
    rows = [("accuracy", 1, 0.5), ("accuracy", 2, 0.7), ("loss", 1, 1.2), ("loss", 2, None)]
    assert group(rows) == {
        "accuracy": {"epochs": [1, 2], "values": [0.5, 0.7]},
        "loss": {"epochs": [1, 2], "values": [1.2, None]},
    }


def test_it_downsamples_each_metric() -> None:
    rows = [("loss", e, 1 / e) for e in range(1, 101)]
    out = group(rows, max_points=5)
    assert out["loss"]["epochs"] == [1, 26, 51, 75, 100]
