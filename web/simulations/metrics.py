"""Epoch metrics of a simulation, read from `nnt_epoch_metric` (written by the stream processors)
by store/metrics.py: series for the charts, downsampled, and live points."""

from __future__ import annotations

import logging
import math
import uuid
from collections.abc import Sequence

import numpy as np
from django.db import DatabaseError, connection
from tsdownsample import LTTBDownsampler

from store import metrics as store

log = logging.getLogger(__name__)
Series = dict[str, dict[str, list]]

# Metrics every Keras run logs; anything else in the logs came from `extra_metrics`.
CORE = ("loss", "accuracy", "val_loss", "val_accuracy")
RUN_INFO = ("learning_rate", "epoch_time_s", "samples_per_s")

# How store.metrics.PACKED_SQL packs a metric's rows: one call of numpy reads them all.
PACKED = np.dtype([("e", ">i4"), ("v", ">f8")])


def lttb_indexes(
    x: Sequence[float], y: Sequence[float | None], max_points: int | None
) -> list[int]:
    """Indexes LTTB keeps of a series (first and last always); missing values are dropped."""
    n = len(x)
    if max_points is None or n <= max_points:
        return list(range(n))
    if max_points <= 2:
        return [n - 1] if max_points == 1 else ([0, n - 1] if max_points == 2 else [])
    finite = [i for i in range(n) if y[i] is not None and math.isfinite(y[i])]  # type: ignore[arg-type]
    if len(finite) <= max_points:
        return finite
    xs = np.asarray([x[i] for i in finite], dtype=np.float64)
    ys = np.asarray([y[i] for i in finite], dtype=np.float64)
    kept = LTTBDownsampler().downsample(xs, ys, n_out=max_points)
    return [finite[int(i)] for i in kept]


def downsample(
    series: dict[str, list], max_points: int | None, by: str = "values"
) -> dict[str, list]:
    """Every list of a series at the indexes LTTB picks on `epochs` × `by`."""
    keep = lttb_indexes(series["epochs"], series[by], max_points)
    if len(keep) == len(series["epochs"]):
        return series
    return {name: [values[i] for i in keep] for name, values in series.items()}


def unpack(data: bytes, max_points: int | None = None) -> dict[str, list]:
    """One metric's packed rows (epoch, value; oldest first per epoch) as a series.

    The newest value of each epoch counts (a resumed or replayed epoch shows its last value);
    over `max_points`, LTTB (tsdownsample) keeps max_points of the finite points.
    """
    rows = np.frombuffer(data, dtype=PACKED)
    epochs, values = rows["e"].astype(np.int64), rows["v"].astype(np.float64)
    newest = np.ones(len(epochs), dtype=bool)
    newest[:-1] = epochs[:-1] != epochs[1:]
    epochs, values = epochs[newest], values[newest]
    if max_points is not None and len(epochs) > max_points:
        finite = np.isfinite(values)
        epochs, values = epochs[finite], values[finite]
        if len(epochs) > max_points:
            keep = lttb_array(epochs, values, max_points)
            epochs, values = epochs[keep], values[keep]
    return {
        "epochs": epochs.tolist(),
        "values": [v if math.isfinite(v) else None for v in values.tolist()],
    }


def lttb_array(x: np.ndarray, y: np.ndarray, max_points: int) -> np.ndarray:
    """Indexes LTTB keeps of finite arrays longer than max_points (first and last always)."""
    if max_points <= 2:
        return np.array([len(x) - 1] if max_points == 1 else [0, len(x) - 1][:max_points])
    return LTTBDownsampler().downsample(x.astype(np.float64), y, n_out=max_points)


def read(simulation_id: uuid.UUID, max_points: int | None = None) -> Series:
    """Every logged epoch metric of one simulation; empty if the table is not there yet."""
    try:
        with connection.cursor() as cursor:
            rows = store.read_packed(cursor, simulation_id)
    except DatabaseError:
        log.warning("cannot read nnt_epoch_metric for simulation %s", simulation_id, exc_info=True)
        return {}
    return {metric: unpack(data, max_points) for metric, data in rows}


def points_since(
    simulation_id: uuid.UUID, since: int, limit: int = 200_000
) -> list[dict[str, object]]:
    """Epochs after `since` as live points `[{"epoch": e, "values": {metric: value}}]`."""
    try:
        with connection.cursor() as cursor:
            rows = store.read_since(cursor, simulation_id, since, limit)
    except DatabaseError:
        log.warning("cannot read nnt_epoch_metric for simulation %s", simulation_id, exc_info=True)
        return []
    out: dict[int, dict[str, float]] = {}
    for epoch, metric, value in rows:
        if value is not None and math.isfinite(value):
            out.setdefault(epoch, {})[metric] = value
    return [{"epoch": e, "values": v} for e, v in sorted(out.items())]


def is_extra(metric: str) -> bool:
    """Whether a metric came from the run's `extra_metrics` (not loss/accuracy/run info)."""
    return metric not in CORE and metric not in RUN_INFO


def table(series: Series, names: Sequence[str]) -> list[dict[str, object]]:
    """Rows `{"epoch": e, name: value, ...}` of the given metrics, by epoch."""
    by_epoch: dict[int, dict[str, object]] = {}
    for name in names:
        s = series.get(name)
        if not s:
            continue
        for epoch, value in zip(s["epochs"], s["values"], strict=True):
            by_epoch.setdefault(epoch, {"epoch": epoch})[name] = value
    return [by_epoch[e] for e in sorted(by_epoch)]


def ordered_names(series: Series) -> tuple[list[str], list[str]]:
    """(main metrics, extra metrics) present in a series, in a stable reading order."""
    main = [m for m in CORE if m in series]
    extra = sorted((m for m in series if is_extra(m)), key=lambda m: (m.removeprefix("val_"), m))
    return main, extra
