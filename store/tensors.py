"""Per-layer tensors of a run, read from `nnt_tensor`: every statement the web reads them with.

The stream workers write the table (store/sql/timeseries.sql creates it); nothing here writes
it. Chunk 0 of each copy of a (layer, kind, variable, epoch) carries the statistics and the
histogram in `stats`; rows with `chunks > 0` also carry the values, split in `chunks` parts
(schemas/tensors.py encodes them). A later copy (`at`) of an epoch replaces an earlier one.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

# Chunk 0 of the newest copy of each (tensor, epoch) carries the statistics and the histogram;
# without histograms their two arrays, most of each row, are dropped in the database.
STATS_SQL = """
SELECT DISTINCT ON (layer_index, kind, variable, epoch)
       layer_index, layer_name, kind, variable, epoch, shape, {stats}
FROM nnt_tensor
WHERE simulation_id = %s AND chunk = 0 {clauses}
ORDER BY layer_index, kind, variable, epoch, at DESC
"""
STATS_ONLY = "stats - 'hist_edges' - 'hist_counts'"
KIND_CLAUSE = "AND kind = %s"
KEYS_CLAUSE = """AND (layer_index, kind, variable) IN
    (SELECT * FROM unnest(%s::integer[], %s::text[], %s::text[]))"""
EPOCHS_SQL = """
SELECT DISTINCT epoch FROM nnt_tensor
WHERE simulation_id = %s AND layer_index = %s AND kind = %s AND variable = %s AND chunks > 0
ORDER BY epoch
"""
CHUNKS_SQL = """
SELECT chunk, chunks, dtype, shape, compression, data, at FROM nnt_tensor
WHERE simulation_id = %s AND layer_index = %s AND kind = %s AND variable = %s AND epoch = %s
  AND chunks > 0
ORDER BY at DESC, chunk
"""
VARIABLES_SQL = """
SELECT DISTINCT layer_index, layer_name, kind, variable FROM nnt_tensor
WHERE simulation_id = %s AND chunks > 0 AND kind = ANY(%s)
ORDER BY layer_index, kind, variable
"""
# One row per recorded variable with values: how many epochs hold them and the newest shape
# (text: array_agg cannot stack shapes of different ranks). The export's size estimate.
SIZES_SQL = """
SELECT layer_index, min(layer_name), kind, variable, count(DISTINCT epoch),
       (array_agg(array_to_string(shape, ',') ORDER BY epoch DESC))[1]
FROM nnt_tensor
WHERE simulation_id = %s AND chunk = 0 AND chunks > 0 AND kind = ANY(%s)
GROUP BY layer_index, kind, variable
ORDER BY layer_index, kind, variable
"""
STAT_COUNT_SQL = """
SELECT count(*) FROM (
    SELECT DISTINCT layer_index, kind, variable, epoch FROM nnt_tensor
    WHERE simulation_id = %s AND chunk = 0) AS rows
"""
SHAPES_SQL = """
SELECT DISTINCT ON (layer_index, kind, variable) layer_index, layer_name, kind, variable, shape
FROM nnt_tensor
WHERE simulation_id = %s AND chunk = 0 AND kind IN ('kernel', 'bias', 'weight')
ORDER BY layer_index, kind, variable, epoch DESC
"""


@dataclass(frozen=True)
class TensorRef:
    """One recorded variable of one layer."""

    layer_index: int
    layer_name: str
    kind: str
    variable: str


class StatRow(NamedTuple):
    """The statistics (with the histogram unless left out) of one tensor at one epoch."""

    ref: TensorRef
    shape: list[int]
    epoch: int
    stats: dict[str, Any]


class Chunk(NamedTuple):
    """One stored part of one copy of a tensor's values."""

    chunk: int
    chunks: int
    dtype: str
    shape: list[int]
    compression: str
    data: bytes
    at: datetime


class ValueSize(NamedTuple):
    """A tensor with recorded values: how many epochs hold them and its newest shape."""

    ref: TensorRef
    epochs: int
    shape: list[int]


class Shape(NamedTuple):
    """The newest recorded shape of a weight variable (kernel, bias, weight)."""

    ref: TensorRef
    shape: list[int]


Key = tuple[int, str, str]  # (layer_index, kind, variable)


def as_dict(value: Any) -> dict[str, Any]:
    """A jsonb column as a dict (Django's psycopg setup hands jsonb to raw SQL as text)."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def stats_query(
    simulation_id: uuid.UUID,
    kind: str | None = None,
    histograms: bool = True,
    keys: Sequence[Key] | None = None,
) -> tuple[str, list[Any]]:
    """STATS_SQL and its parameters: one kind only, or only the variables of `keys`."""
    clauses: list[str] = []
    params: list[Any] = [simulation_id]
    if kind:
        clauses.append(KIND_CLAUSE)
        params.append(kind)
    if keys is not None:
        clauses.append(KEYS_CLAUSE)
        params += [[k[0] for k in keys], [k[1] for k in keys], [k[2] for k in keys]]
    sql = STATS_SQL.format(stats="stats" if histograms else STATS_ONLY, clauses=" ".join(clauses))
    return sql, params


def read_stats(
    cursor: DBAPICursor,
    simulation_id: uuid.UUID,
    kind: str | None = None,
    histograms: bool = True,
    keys: Sequence[Key] | None = None,
) -> list[StatRow]:
    """The newest statistics of every (tensor, epoch), by layer, kind, variable and epoch."""
    cursor.execute(*stats_query(simulation_id, kind, histograms, keys))
    return [
        StatRow(TensorRef(index, name, kd, variable), list(shape or []), epoch, as_dict(stats))
        for index, name, kd, variable, epoch, shape, stats in cursor.fetchall()
    ]


def read_epochs(cursor: DBAPICursor, simulation_id: uuid.UUID, ref: TensorRef) -> list[int]:
    """Epochs at which the whole tensor (not only its statistics) was recorded."""
    cursor.execute(EPOCHS_SQL, [simulation_id, ref.layer_index, ref.kind, ref.variable])
    return [row[0] for row in cursor.fetchall()]


def read_chunks(
    cursor: DBAPICursor, simulation_id: uuid.UUID, ref: TensorRef, epoch: int
) -> list[Chunk]:
    """Every stored part of one epoch's values, the newest copy first, by chunk."""
    cursor.execute(CHUNKS_SQL, [simulation_id, ref.layer_index, ref.kind, ref.variable, epoch])
    return [
        Chunk(chunk, chunks, dtype, list(shape), compression, bytes(data or b""), at)
        for chunk, chunks, dtype, shape, compression, data, at in cursor.fetchall()
    ]


def read_variables(
    cursor: DBAPICursor, simulation_id: uuid.UUID, kinds: Sequence[str]
) -> list[TensorRef]:
    """Every tensor of these kinds with recorded values (not only statistics), by layer."""
    cursor.execute(VARIABLES_SQL, [simulation_id, list(kinds)])
    return [TensorRef(*row) for row in cursor.fetchall()]


def read_value_sizes(
    cursor: DBAPICursor, simulation_id: uuid.UUID, kinds: Sequence[str]
) -> list[ValueSize]:
    """(tensor, epochs with values, newest shape) of every tensor of these kinds with values."""
    cursor.execute(SIZES_SQL, [simulation_id, list(kinds)])
    out = []
    for index, name, kind, variable, epochs, shape in cursor.fetchall():
        dims = [int(d) for d in (shape or "").split(",") if d.strip()]
        out.append(ValueSize(TensorRef(index, name, kind, variable), int(epochs), dims))
    return out


def count_stats(cursor: DBAPICursor, simulation_id: uuid.UUID) -> int:
    """How many (tensor, epoch) statistics rows are recorded."""
    cursor.execute(STAT_COUNT_SQL, [simulation_id])
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def read_shapes(cursor: DBAPICursor, simulation_id: uuid.UUID) -> list[Shape]:
    """The newest shape of every kernel, bias and weight variable, by layer."""
    cursor.execute(SHAPES_SQL, [simulation_id])
    return [
        Shape(TensorRef(index, name, kind, variable), list(shape or []))
        for index, name, kind, variable, shape in cursor.fetchall()
    ]
