"""The tables the stream workers write: each one's name, columns and PostgreSQL types.

The columns are those of store/sql/timeseries.sql, in the order the row builders
(stream_processors/rows.py) fill them; the types are what a binary COPY sends (store/sink.py).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Table:
    """A target table: its columns and their PostgreSQL types (for binary COPY)."""

    name: str
    columns: tuple[str, ...]
    types: tuple[str, ...]


EPOCH_METRIC = Table(
    "nnt_epoch_metric",
    ("simulation_id", "epoch", "metric", "value", "at"),
    ("uuid", "int4", "text", "float8", "timestamptz"),
)
BATCH_METRIC = Table(
    "nnt_batch_metric",
    ("simulation_id", "epoch", "step", "metric", "value", "at"),
    ("uuid", "int4", "int4", "text", "float8", "timestamptz"),
)
TENSOR = Table(
    "nnt_tensor",
    (
        "simulation_id",
        "layer_index",
        "layer_name",
        "kind",
        "variable",
        "epoch",
        "chunk",
        "chunks",
        "dtype",
        "shape",
        "compression",
        "data",
        "stats",
        "reduced",
        "at",
    ),
    (
        "uuid",
        "int4",
        "text",
        "text",
        "text",
        "int4",
        "int4",
        "int4",
        "text",
        "int4[]",
        "text",
        "bytea",
        "jsonb",
        "bool",
        "timestamptz",
    ),
)
STATUS_EVENT = Table(
    "nnt_status_event",
    ("simulation_id", "at", "status", "epoch", "message", "command_id"),
    ("uuid", "timestamptz", "text", "int4", "text", "uuid"),
)
RESOURCE = Table(
    "nnt_resource",
    (
        "simulation_id",
        "at",
        "cpu_percent",
        "memory_bytes",
        "memory_limit_bytes",
        "gpu_percent",
        "gpu_memory_bytes",
    ),
    ("uuid", "timestamptz", "float8", "int8", "int8", "float8", "int8"),
)
TAG_AGGREGATE = Table(
    "nnt_tag_aggregate",
    ("owner", "tag", "metric", "epoch", "count", "sum", "sumsq", "min", "max", "updated_at"),
    (
        "text",
        "text",
        "text",
        "int4",
        "int8",
        "float8",
        "float8",
        "float8",
        "float8",
        "timestamptz",
    ),
)
TAG_AGGREGATE_KEY = ("owner", "tag", "metric", "epoch")
EVIDENCE = Table(
    "nnt_epoch_evidence",
    ("simulation_id", "epoch", "evidence", "at"),
    ("uuid", "int4", "jsonb", "timestamptz"),
)


@dataclass(frozen=True)
class Encoded:
    """Rows already in PostgreSQL's binary COPY format, signature and trailer included
    (store.sink.Sink.copy sends them as they are): the ingest hot path builds them with
    `struct` in one pass, at a third of the CPU of COPY text, and PostgreSQL parses no text."""

    data: bytes
    rows: int


COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
COPY_TRAILER = b"\xff\xff"
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
_FIELD = struct.Struct(">i")
_TIMESTAMPTZ = struct.Struct(">iq")


def copy_text_field(value: str) -> bytes:
    """A text value as a binary COPY field (length, then UTF-8)."""
    data = value.encode()
    return _FIELD.pack(len(data)) + data


def copy_timestamptz_field(at: datetime) -> bytes:
    """A timestamptz as a binary COPY field: microseconds since 2000-01-01 UTC (a time
    without zone is UTC, as everywhere in the stream workers)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return _TIMESTAMPTZ.pack(8, (at - _PG_EPOCH) // _MICROSECOND)


# The time-series tables proper, partitioned by `at` (hypertables on TimescaleDB; store.schema).
PARTITIONED = (
    EPOCH_METRIC.name,
    BATCH_METRIC.name,
    TENSOR.name,
    STATUS_EVENT.name,
    RESOURCE.name,
)
