"""The store's reads for the web (store/tensors.py, metrics.py, batches.py, resources.py,
runs_table.py, exports.py): the statements they build and the rows they hand back.

A stand-in cursor answers canned rows: these are the functions' pure logic; the statements
themselves run against PostgreSQL and TimescaleDB in tests/integration/web/.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from store import batches, exports, metrics, resources, runs_table, tensors

SID = uuid.UUID("00000000-0000-0000-0000-000000000001")
AT = datetime(2025, 1, 1, tzinfo=UTC)


class Cursor:
    """A DB-API cursor answering `rows` to every statement, recording what it ran."""

    def __init__(self, *rows: Any) -> None:
        self.rows = list(rows)
        self.ran: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> None:
        self.ran.append((sql, params))

    def fetchall(self) -> list[Any]:
        return self.rows

    def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None


def test_it_narrows_tensor_statistics_to_a_kind_and_keys_in_parameter_order() -> None:
    sql, params = tensors.stats_query(
        SID, "kernel", False, [(2, "kernel", "a/k"), (3, "bias", "b")]
    )
    assert tensors.KIND_CLAUSE in sql and "unnest(" in sql
    assert tensors.STATS_ONLY in sql  # no histograms: their arrays stay in the database
    assert params == [SID, "kernel", [2, 3], ["kernel", "bias"], ["a/k", "b"]]
    sql, params = tensors.stats_query(SID)
    assert "hist_edges" not in sql and "unnest(" not in sql and params == [SID]


def test_it_hands_back_tensor_statistics_with_jsonb_text_decoded() -> None:
    stats = {"mean": 0.5, "flags": ["dead"]}
    cursor = Cursor((2, "dense", "kernel", "dense/kernel", 7, [3, 4], json.dumps(stats)))
    (row,) = tensors.read_stats(cursor, SID)
    assert row == tensors.StatRow(
        tensors.TensorRef(2, "dense", "kernel", "dense/kernel"), [3, 4], 7, stats
    )
    cursor = Cursor((2, "dense", "kernel", "dense/kernel", 7, [3, 4], "not json"))
    assert tensors.read_stats(cursor, SID)[0].stats == {}


def test_it_reads_value_sizes_from_shape_text() -> None:
    cursor = Cursor((0, "dense", "kernel", "k", 5, "784,128"), (1, "out", "bias", "b", 2, ""))
    sizes = tensors.read_value_sizes(cursor, SID, ("kernel", "bias"))
    assert [(s.ref.variable, s.epochs, s.shape) for s in sizes] == [
        ("k", 5, [784, 128]),
        ("b", 2, []),
    ]
    assert cursor.ran[0][1] == [SID, ["kernel", "bias"]]


def test_it_hands_back_tensor_chunks_as_bytes() -> None:
    cursor = Cursor(
        (0, 2, "float32", [2], "zstd", memoryview(b"ab"), AT), (1, 2, "f", [2], "z", None, AT)
    )
    chunks = tensors.read_chunks(cursor, SID, tensors.TensorRef(1, "d", "kernel", "v"), 4)
    assert [c.data for c in chunks] == [b"ab", b""]
    assert cursor.ran[0][1] == [SID, 1, "kernel", "v", 4]


def test_it_counts_no_statistics_when_there_is_no_row() -> None:
    assert tensors.count_stats(Cursor(), SID) == 0
    assert tensors.count_stats(Cursor((12,)), SID) == 12


def test_it_hands_back_packed_metrics_by_name() -> None:
    cursor = Cursor(("val_loss", memoryview(b"\x01")), ("loss", b"\x02"))
    assert metrics.read_packed(cursor, SID) == [
        metrics.Packed("loss", b"\x02"),
        metrics.Packed("val_loss", b"\x01"),
    ]


def test_it_aggregates_a_group_of_the_runs_given() -> None:
    other = uuid.uuid4()
    cursor = Cursor(("loss", 1, 2, 0.5, 0.4, 0.6, 0.1))
    (point,) = metrics.read_group(cursor, (SID, other))
    assert (point.metric, point.runs, point.mean) == ("loss", 2, 0.5)
    assert cursor.ran[0][1] == [[SID, other]]
    assert metrics.count(Cursor(), SID) == (0, 0)


def test_it_binds_batch_points_by_name() -> None:
    cursor = Cursor(("loss", 1, 9, 0.4, 0.1, 0.9, True))
    (point,) = batches.read_points(cursor, SID, None, 0, 5, 11)
    assert point.reduced and point.value_min == 0.1
    assert cursor.ran[0][1] == {"sid": SID, "metric": None, "first": 0, "last": 5, "limit": 11}


def test_it_reads_every_resource_sample_when_no_limit_is_given() -> None:
    cursor = Cursor()
    resources.read_samples(cursor, SID, 0)
    resources.read_samples(cursor, SID, 50)
    assert [p["buckets"] for _, p in cursor.ran] == [resources.ALL, 50]
    assert resources.read_first(Cursor((None, AT)), SID) == (None, AT)


def test_it_sums_no_usage_without_samples() -> None:
    usage = resources.latest_sum(Cursor((None, None, None, None, None, 0, None)), [SID])
    assert usage.runs == 0 and usage.cpu_percent is None


def test_it_builds_runs_table_columns_over_the_runs_row() -> None:
    assert runs_table.metric_sql("best_min").startswith("SELECT m.best_min FROM nnt_run_metric")
    assert "@id" in runs_table.HEALTH_RANK and "@config" in runs_table.HP_SQL["optimizer"][0]
    assert {kind for _, kind in runs_table.HP_SQL.values()} == {"text", "number"}
    cursor = Cursor(("loss",), ("accuracy",))
    names = runs_table.read_metric_names(cursor, "SELECT id FROM runs WHERE x = %s", (3,))
    assert names == ["loss", "accuracy"]
    assert cursor.ran == [
        (
            "SELECT DISTINCT metric FROM nnt_run_metric WHERE simulation_id IN "
            "(SELECT id FROM runs WHERE x = %s)",
            (3,),
        )
    ]


def test_it_reads_a_blob_slice_from_a_zero_based_offset() -> None:
    cursor = Cursor((memoryview(b"tar"),))
    assert exports.read_slice(cursor, "checkpoint/x", 1, 0, 512) == b"tar"
    assert cursor.ran[0][1] == [1, 512, "checkpoint/x", 1]  # substring() counts from 1
    assert exports.read_slice(Cursor(), "checkpoint/x", 2, 0, 512) is None
    assert exports.has_blobs(Cursor((True,))) and not exports.has_blobs(Cursor((None,)))
