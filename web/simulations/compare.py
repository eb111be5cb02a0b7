"""Comparisons: one run minus another per epoch, and a tag group's mean with its min/max band."""

from __future__ import annotations

import logging
import uuid

from django.db import DatabaseError, connection

from store import metrics as store
from web.simulations import metrics

log = logging.getLogger(__name__)


def difference(
    a: metrics.Series, b: metrics.Series, max_points: int | None = None
) -> dict[str, dict[str, list]]:
    """Per metric both runs logged: epochs both have, A's and B's values and A − B."""
    out: dict[str, dict[str, list]] = {}
    for name in sorted(set(a) & set(b)):
        b_at = dict(zip(b[name]["epochs"], b[name]["values"], strict=True))
        series: dict[str, list] = {"epochs": [], "a": [], "b": [], "diff": []}
        for epoch, va in zip(a[name]["epochs"], a[name]["values"], strict=True):
            vb = b_at.get(epoch)
            if epoch not in b_at:
                continue
            series["epochs"].append(epoch)
            series["a"].append(va)
            series["b"].append(vb)
            series["diff"].append(va - vb if va is not None and vb is not None else None)
        if series["epochs"]:
            out[name] = metrics.downsample(series, max_points, by="diff")
    return out


def tag_group(
    simulation_ids: list[uuid.UUID], max_points: int | None = None
) -> dict[str, dict[str, list]]:
    """`{metric: {epochs, count, mean, min, max, std}}` over the given runs: the caller's own
    runs carrying the tag, aggregated on read (store.metrics.read_group)."""
    if not simulation_ids:
        return {}
    try:
        with connection.cursor() as cursor:
            rows = store.read_group(cursor, simulation_ids)
    except DatabaseError:
        log.warning("cannot aggregate %d simulations", len(simulation_ids), exc_info=True)
        return {}
    out: dict[str, dict[str, list]] = {}
    for metric, epoch, count, mean, lo, hi, std in rows:
        s = out.setdefault(
            metric, {"epochs": [], "count": [], "mean": [], "min": [], "max": [], "std": []}
        )
        for key, value in (
            ("epochs", epoch),
            ("count", count),
            ("mean", mean),
            ("min", lo),
            ("max", hi),
            ("std", std),
        ):
            s[key].append(value)
    return {m: metrics.downsample(s, max_points, by="mean") for m, s in out.items()}
