"""Per-layer tensors of a simulation from `nnt_tensor`: statistics, histograms, sampled values."""

from __future__ import annotations

import json
import logging
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db import DatabaseError, connection

from schemas.tensors import TensorCodecError, decode_array

log = logging.getLogger(__name__)
KINDS = ("kernel", "bias", "weight", "gradient", "activation")
STAT_NAMES = ("mean", "std", "min", "max", "norm", "zero_fraction", "nonfinite", "cosine_prev")
HEATMAP_BINS = 32

MAX_KEYS = 200  # variables per /tensors?key=… request: a screenful of layers, several times over

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


def parse_key(key: str) -> tuple[int, str, str]:
    """`layer_index:kind:variable` as its three parts; ValueError names what is wrong."""
    index, _, rest = key.partition(":")
    kind, _, variable = rest.partition(":")
    if not index.isdigit() or kind not in KINDS or not variable:
        raise ValueError(
            f"{key!r} is not a variable key: use layer_index:kind:variable as /tensors lists "
            f"it (kind one of {', '.join(KINDS)}), e.g. 2:kernel:mlp/hidden/kernel"
        )
    return int(index), kind, variable


def _fetch(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    except DatabaseError:
        log.warning("cannot read nnt_tensor (params %s)", params[:1], exc_info=True)
        return []


def _json(value: Any) -> dict[str, Any]:
    """A jsonb column as a dict (Django's psycopg setup hands jsonb to raw SQL as text)."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, dict) else {}


def rebin(
    edges: list[list[float]], counts: list[list[int]], bins: int = HEATMAP_BINS
) -> tuple[list[float], list[list[float]]]:
    """Histograms with per-epoch edges on one common grid, as fractions (uniform within a bin)."""
    usable = [
        (np.asarray(e, float), np.asarray(c, float))
        for e, c in zip(edges, counts, strict=True)
        if len(e) == len(c) + 1 and len(c) > 0
    ]
    if not usable:
        return [], [[] for _ in counts]
    lo = min(float(e[0]) for e, _ in usable)
    hi = max(float(e[-1]) for e, _ in usable)
    if not np.isfinite(lo) or not np.isfinite(hi):
        return [], [[] for _ in counts]
    hi = hi if hi > lo else lo + 1e-12
    grid = np.linspace(lo, hi, bins + 1)
    out: list[list[float]] = []
    for e, c in zip(edges, counts, strict=True):
        if len(e) != len(c) + 1 or not len(c) or np.sum(c) <= 0:
            out.append([0.0] * bins)
            continue
        src = np.asarray(e, float)
        cdf = np.concatenate([[0.0], np.cumsum(np.asarray(c, float))])
        if src[-1] <= src[0]:  # a constant tensor: every value in one bin
            cdf_at = np.where(grid >= src[0], cdf[-1], 0.0)
        else:
            cdf_at = np.interp(grid, src, cdf, left=0.0, right=cdf[-1])
        out.append((np.diff(cdf_at) / cdf[-1]).round(5).tolist())
    return grid.round(7).tolist(), out


def _series(ref: TensorRef, shape: list[int]) -> dict[str, Any]:
    return {
        "key": f"{ref.layer_index}:{ref.kind}:{ref.variable}",
        "layer_index": ref.layer_index,
        "layer_name": ref.layer_name,
        "kind": ref.kind,
        "variable": ref.variable,
        "shape": list(shape or []),
        "epochs": [],
        "flags": [],
        "stats": {name: [] for name in STAT_NAMES},
        "_edges": [],
        "_counts": [],
    }


def _history_query(
    simulation_id: uuid.UUID, kind: str | None, histograms: bool, keys: list[str] | None
) -> tuple[str, list[Any]]:
    clauses, params = [], [simulation_id]
    if kind:
        clauses.append(KIND_CLAUSE)
        params.append(kind)
    if keys is not None:
        parts = [parse_key(k) for k in keys]
        clauses.append(KEYS_CLAUSE)
        params += [[p[0] for p in parts], [p[1] for p in parts], [p[2] for p in parts]]
    sql = STATS_SQL.format(stats="stats" if histograms else STATS_ONLY, clauses=" ".join(clauses))
    return sql, params


def history(
    simulation_id: uuid.UUID,
    kind: str | None = None,
    histograms: bool = True,
    keys: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Per-epoch statistics, flags and (unless `histograms` is False: `hist` None) a
    common-grid histogram of every recorded tensor, or only of the variables named in `keys`."""
    out: dict[TensorRef, dict[str, Any]] = {}
    for index, name, kd, variable, epoch, shape, stats in _fetch(
        *_history_query(simulation_id, kind, histograms, keys)
    ):
        ref = TensorRef(index, name, kd, variable)
        series = out.setdefault(ref, _series(ref, shape))
        stats = _json(stats)
        series["epochs"].append(epoch)
        series["flags"].append(list(stats.get("flags") or []))
        for stat in STAT_NAMES:
            series["stats"][stat].append(stats.get(stat))
        series["_edges"].append(stats.get("hist_edges") or [])
        series["_counts"].append(stats.get("hist_counts") or [])
    for series in out.values():
        edges, counts = series.pop("_edges"), series.pop("_counts")
        if histograms:
            grid, density = rebin(edges, counts)
            series["hist"] = {"edges": grid, "density": density}
        else:
            series["hist"] = None
    return list(out.values())


def _join(rows: list[tuple[Any, ...]]) -> np.ndarray | None:
    """The newest complete copy among one epoch's chunk rows, decoded; None if incomplete."""
    newest = rows[0][6] if rows else None
    parts = [r for r in rows if r[6] == newest]
    if not parts or len(parts) != parts[0][1]:
        return None
    _, _, dtype, shape, compression, _, _ = parts[0]
    data = b"".join(bytes(r[5] or b"") for r in sorted(parts, key=lambda r: r[0]))
    try:
        return decode_array(data, dtype, list(shape), compression)
    except (TensorCodecError, ValueError) as exc:
        log.warning("undecodable tensor chunks (%s)", exc)
        return None


def epochs_with_values(simulation_id: uuid.UUID, ref: TensorRef) -> list[int]:
    """Epochs at which the whole tensor (not only its statistics) was recorded."""
    params = [simulation_id, ref.layer_index, ref.kind, ref.variable]
    return [row[0] for row in _fetch(EPOCHS_SQL, params)]


def arrays(
    simulation_id: uuid.UUID, ref: TensorRef, epochs: list[int] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(epoch, values) of one tensor, one epoch read at a time (bounded memory)."""
    for epoch in epochs if epochs is not None else epochs_with_values(simulation_id, ref):
        rows = _fetch(CHUNKS_SQL, [simulation_id, ref.layer_index, ref.kind, ref.variable, epoch])
        array = _join(rows)
        if array is not None:
            yield epoch, array


def spread(values: list[int], limit: int) -> list[int]:
    """At most `limit` items, evenly spread, first and last kept."""
    if len(values) <= limit:
        return values
    if limit <= 1:
        return values[-1:]
    step = (len(values) - 1) / (limit - 1)
    return [values[round(i * step)] for i in range(limit)]


def sample(
    simulation_id: uuid.UUID, ref: TensorRef, max_values: int = 2000, max_epochs: int = 40
) -> dict[str, Any]:
    """Values at one fixed random subset of indexes per recorded epoch, for the 3-D scatter."""
    epochs = spread(epochs_with_values(simulation_id, ref), max_epochs)
    out: dict[str, Any] = {
        "layer_name": ref.layer_name,
        "kind": ref.kind,
        "variable": ref.variable,
        "epochs": [],
        "index": [],
        "values": [],
        "size": 0,
        "shape": [],
    }
    picked: np.ndarray | None = None
    for epoch, array in arrays(simulation_id, ref, epochs):
        flat = array.reshape(-1)
        if picked is None:
            # Seeded by the variable: the same indexes every epoch and every page load.
            rng = np.random.default_rng(zlib.crc32(ref.variable.encode()))
            size = min(flat.size, max(1, max_values))
            picked = np.sort(rng.choice(flat.size, size=size, replace=False))
            out.update(index=picked.tolist(), size=int(flat.size), shape=list(array.shape))
        if flat.size != out["size"]:
            continue  # the layer changed shape (a different model on resume): skip the epoch
        values = flat[picked].astype(np.float64)
        out["epochs"].append(epoch)
        out["values"].append([float(v) if np.isfinite(v) else None for v in values])
    return out


def variables(simulation_id: uuid.UUID, kinds: tuple[str, ...] = KINDS) -> list[TensorRef]:
    """Every tensor with recorded values (not only statistics), by layer."""
    return [TensorRef(*row) for row in _fetch(VARIABLES_SQL, [simulation_id, list(kinds)])]


def stat_rows(simulation_id: uuid.UUID) -> Iterator[tuple[TensorRef, list[int], int, dict]]:
    """(tensor, shape, epoch, statistics with the raw histogram) of every recorded epoch (the
    export's tensor_stats.csv and histograms.npz)."""
    sql = STATS_SQL.format(stats="stats", clauses="")
    for index, name, kind, variable, epoch, shape, stats in _fetch(sql, [simulation_id]):
        yield TensorRef(index, name, kind, variable), list(shape or []), epoch, _json(stats)


def value_sizes(
    simulation_id: uuid.UUID, kinds: tuple[str, ...] = KINDS
) -> list[tuple[TensorRef, int, list[int]]]:
    """(tensor, epochs with values, newest shape) of every tensor with recorded values."""
    out = []
    for index, name, kind, variable, epochs, shape in _fetch(
        SIZES_SQL, [simulation_id, list(kinds)]
    ):
        dims = [int(d) for d in (shape or "").split(",") if d.strip()]
        out.append((TensorRef(index, name, kind, variable), int(epochs), dims))
    return out


def stat_count(simulation_id: uuid.UUID) -> int:
    """How many (tensor, epoch) statistics rows are recorded."""
    rows = _fetch(STAT_COUNT_SQL, [simulation_id])
    return int(rows[0][0]) if rows else 0


def parameter_counts(simulation_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Per layer name: its variables' shapes and total parameter count, from recorded shapes."""
    out: dict[str, dict[str, Any]] = {}
    for index, name, kind, variable, shape in _fetch(SHAPES_SQL, [simulation_id]):
        layer = out.setdefault(name, {"layer_index": index, "params": 0, "variables": {}})
        count = int(np.prod(shape)) if shape else 0
        layer["params"] += count
        layer["variables"][variable.rsplit("/", 1)[-1] or kind] = list(shape or [])
    return out


def find(simulation_id: uuid.UUID, key: str) -> TensorRef | None:
    """The recorded tensor named by `layer_index:kind:variable`, or None."""
    for ref in variables(simulation_id):
        if f"{ref.layer_index}:{ref.kind}:{ref.variable}" == key:
            return ref
    return None
