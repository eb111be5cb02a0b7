"""Per-layer tensors of a simulation from `nnt_tensor`: statistics, histograms, sampled values.

The rows are read by store/tensors.py; a table not there yet reads as no tensors.
"""

from __future__ import annotations

import logging
import uuid
import zlib
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import numpy as np
from django.db import DatabaseError, connection

from schemas.tensors import TensorCodecError, decode_array, join_chunks
from store import tensors as store
from store.tensors import Chunk, StatRow, TensorRef, ValueSize

log = logging.getLogger(__name__)
KINDS = ("kernel", "bias", "weight", "gradient", "activation")
STAT_NAMES = ("mean", "std", "min", "max", "norm", "zero_fraction", "nonfinite", "cosine_prev")
HEATMAP_BINS = 32

MAX_KEYS = 200  # variables per /tensors?key=… request: a screenful of layers, several times over
T = TypeVar("T")


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


def _read(read: Callable[..., T], simulation_id: uuid.UUID, *args: Any, empty: T) -> T:
    """What a store read answers, or `empty` when nnt_tensor cannot be read."""
    try:
        with connection.cursor() as cursor:
            return read(cursor, simulation_id, *args)
    except DatabaseError:
        log.warning("simulation %s: cannot read nnt_tensor", simulation_id, exc_info=True)
        return empty


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


def history(
    simulation_id: uuid.UUID,
    kind: str | None = None,
    histograms: bool = True,
    keys: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Per-epoch statistics, flags and (unless `histograms` is False: `hist` None) a
    common-grid histogram of every recorded tensor, or only of the variables named in `keys`."""
    parts = None if keys is None else [parse_key(k) for k in keys]
    out: dict[TensorRef, dict[str, Any]] = {}
    rows = _read(store.read_stats, simulation_id, kind, histograms, parts, empty=[])
    for ref, shape, epoch, stats in rows:
        series = out.setdefault(ref, _series(ref, shape))
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


def _join(rows: list[Chunk]) -> np.ndarray | None:
    """The newest complete copy among one epoch's chunk rows, decoded; None if incomplete."""
    newest = rows[0].at if rows else None
    parts = [r for r in rows if r.at == newest]
    data = join_chunks(((r.chunk, r.data) for r in parts), parts[0].chunks) if parts else None
    if data is None:
        return None
    first = parts[0]
    try:
        return decode_array(data, first.dtype, first.shape, first.compression)
    except (TensorCodecError, ValueError) as exc:
        log.warning("undecodable tensor chunks (%s)", exc)
        return None


def epochs_with_values(simulation_id: uuid.UUID, ref: TensorRef) -> list[int]:
    """Epochs at which the whole tensor (not only its statistics) was recorded."""
    return _read(store.read_epochs, simulation_id, ref, empty=[])


def arrays(
    simulation_id: uuid.UUID, ref: TensorRef, epochs: list[int] | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """(epoch, values) of one tensor, one epoch read at a time (bounded memory)."""
    for epoch in epochs if epochs is not None else epochs_with_values(simulation_id, ref):
        array = _join(_read(store.read_chunks, simulation_id, ref, epoch, empty=[]))
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
    return _read(store.read_variables, simulation_id, kinds, empty=[])


def stat_rows(simulation_id: uuid.UUID) -> Iterator[StatRow]:
    """(tensor, shape, epoch, statistics with the raw histogram) of every recorded epoch (the
    export's tensor_stats.csv and histograms.npz)."""
    yield from _read(store.read_stats, simulation_id, empty=[])


def value_sizes(simulation_id: uuid.UUID, kinds: tuple[str, ...] = KINDS) -> list[ValueSize]:
    """(tensor, epochs with values, newest shape) of every tensor with recorded values."""
    return _read(store.read_value_sizes, simulation_id, kinds, empty=[])


def stat_count(simulation_id: uuid.UUID) -> int:
    """How many (tensor, epoch) statistics rows are recorded."""
    return _read(store.count_stats, simulation_id, empty=0)


def parameter_counts(simulation_id: uuid.UUID) -> dict[str, dict[str, Any]]:
    """Per layer name: its variables' shapes and total parameter count, from recorded shapes."""
    out: dict[str, dict[str, Any]] = {}
    for ref, shape in _read(store.read_shapes, simulation_id, empty=[]):
        layer = out.setdefault(
            ref.layer_name, {"layer_index": ref.layer_index, "params": 0, "variables": {}}
        )
        layer["params"] += int(np.prod(shape)) if shape else 0
        layer["variables"][ref.variable.rsplit("/", 1)[-1] or ref.kind] = shape
    return out


def find(simulation_id: uuid.UUID, key: str) -> TensorRef | None:
    """The recorded tensor named by `layer_index:kind:variable`, or None."""
    for ref in variables(simulation_id):
        if f"{ref.layer_index}:{ref.kind}:{ref.variable}" == key:
            return ref
    return None
