"""The export zip, streamed: a small summary by default, every recorded value on request.

The summary (kB to MB) holds the configuration, the epoch metrics and, per layer variable and
epoch, the statistics, health flags and histogram. `full=True` adds every recorded kernel, bias
and gradient as NPZ, in float32 or float16 (never as CSV: text triples the size). The zip is
written to a sink whose bytes are handed out after each piece: nothing is built on disk, and
one variable's history is in memory at a time.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db import DatabaseError, connection

from schemas.diagnosis import LayerEvidence, TrendEvidence
from store import diagnoses
from store import metrics as metric_store
from web.simulations import metrics, summary, tensors
from web.simulations.models import Simulation

log = logging.getLogger(__name__)
CONTENTS = ("summary", "full")
DTYPES = ("float32", "float16")
STAT_COLUMNS = (
    "layer_index",
    "layer_name",
    "kind",
    "variable",
    "epoch",
    *tensors.STAT_NAMES,
    "flags",
)
# Full values per file; activations are recorded as statistics only (tensor_stats.csv).
VALUE_FILES = {"kernels": ("kernel", "weight"), "biases": ("bias",), "gradients": ("gradient",)}
VALUE_KINDS = tuple(k for kinds in VALUE_FILES.values() for k in kinds)
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
ROWS_PER_WRITE = 8 << 20  # bytes of one variable's history handed out at a time
EVIDENCE_EPOCHS = 100_000  # evidence.csv: every logged epoch of any real run
README = """NN Tracker export of simulation {id} ({name}): {content}

config.json         the simulation, its plan (optimizer, loss, learning rate, fold),
                    the experiment's configuration, the model summary and final test metrics
model.json          the Keras model JSON as uploaded
error.txt           (a failed run only) the full error: the one-line reason, then the
                    traceback behind it (config.json has both as "message" and "error")
epochs.csv          one row per logged epoch, one column per metric (learning rate included)
extra_metrics.csv   the same rows, only the metrics chosen as extra_metrics
tensor_stats.csv    per layer, variable (kernel, bias, gradient, activation) and epoch: mean,
                    std, min, max, norm, zero fraction, non-finite count, cosine with the
                    previous epoch, health flags (space-separated)
histograms.npz      per variable, key "<kind>.<layer>.<variable>" +
                    ".epochs" (E,), ".edges" (E, bins + 1), ".counts" (E, bins): the histogram
                    of every recorded epoch (NaN edges and 0 counts: no finite value that epoch)
{diagnosed}{values}
Read it with pandas.read_csv("epochs.csv") and numpy.load("histograms.npz").
"""
VALUES_README = """kernels.npz, biases.npz, gradients.npz
                    every recorded value ({dtype}): key "<layer>.<variable>" -> array
                    (epochs, *shape); "<layer>.<variable>.epochs" -> the epoch of each row
                    (a gradient's variable is the kernel or bias it belongs to)
"""
DIAGNOSED_README = """diagnoses.json      (a diagnosed run) every problem the trainer found: what, which layers,
                    first and last epoch seen, the evidence, the fix to try, still active or not
evidence.csv        (a diagnosed run) per logged epoch and layer, the evidence the diagnoses
                    read (gradient ratio, update ratio, saturation, dead units, spectral alpha,
                    ...), and the loss curve's trend in the trend_ columns
"""
LAYER_FIELDS = tuple(LayerEvidence.model_fields)
TREND_FIELDS = tuple(TrendEvidence.model_fields)
EVIDENCE_COLUMNS = ("epoch", *LAYER_FIELDS, *(f"trend_{f}" for f in TREND_FIELDS))
SUMMARY_NOTE = """Only statistics here: `?content=full` (nntracker export --full) adds every recorded
value of kernels, biases and gradients as NPZ.
"""


class Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose written bytes are taken out piece by piece."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def take(self) -> bytes:
        """Bytes written since the last call."""
        out = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return out


def filename(sim: Simulation, full: bool = False, dtype: str = "float32", ext: str = ".zip") -> str:
    """`<name>-<id prefix>[-full[-float16]].zip`, safe for a Content-Disposition header."""
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (sim.name or "simulation"))
    base = re.sub(r"-{2,}", "-", base)  # "digits · Adam" -> "digits-Adam"
    tail = ("-full" + ("-float16" if dtype == "float16" else "")) if full else ""
    return f"{base.strip('-')[:60] or 'simulation'}-{str(sim.id)[:8]}{tail}{ext}"


def config_doc(sim: Simulation) -> dict[str, Any]:
    """The run, its plan, its experiment's configuration, model summary and test metrics."""
    model = sim.experiment.model_json if sim.experiment else {}
    return {
        "simulation": {
            "id": str(sim.id),
            "name": sim.name,
            "owner": sim.owner_name,
            "status": sim.status,
            "epoch": sim.epoch,
            "total_epochs": sim.total_epochs,
            "tags": sim.tags,
            "message": sim.message,
            "error": sim.error,
            "created_at": sim.created_at.isoformat() if sim.created_at else None,
        },
        "plan": sim.config,
        "experiment": sim.experiment.config if sim.experiment else {},
        "model_summary": summary.model_summary(model or {}, tensors.parameter_counts(sim.id)),
        "test_metrics": summary.run_test_metrics(sim),
    }


def error_text(sim: Simulation) -> str:
    """error.txt of a failed run: the one-line reason, then the full error when it says more."""
    line, full = sim.headline, sim.error.strip()
    return f"{line}\n\n{full}\n" if full and full != line else f"{line or full}\n"


def readme(sim: Simulation, full: bool, dtype: str, diagnosed: bool = False) -> str:
    """README.txt: what each file holds."""
    content = f"summary and every recorded value ({dtype})" if full else "summary"
    values = VALUES_README.format(dtype=dtype) if full else ""
    text = README.format(
        id=sim.id,
        name=sim.name,
        content=content,
        values=values,
        diagnosed=DIAGNOSED_README if diagnosed else "",
    )
    return text if full else text + "\n" + SUMMARY_NOTE


def _cell(value: Any) -> Any:
    """A CSV cell: empty for none, lists space-separated."""
    if value is None:
        return ""
    return " ".join(str(v) for v in value) if isinstance(value, list) else value


def evidence_rows(docs: list[dict[str, Any]]) -> Iterator[list[Any]]:
    """evidence.csv's rows: one per epoch and layer (one with empty layer cells for an epoch
    without layers), the epoch's trend repeated on each."""
    for doc in docs:
        trend = doc.get("trend") or {}
        tail = [_cell(trend.get(f)) for f in TREND_FIELDS]
        for layer in doc.get("layers") or [{}]:
            yield [doc.get("epoch"), *(_cell(layer.get(f)) for f in LAYER_FIELDS), *tail]


def _csv(zf: zipfile.ZipFile, name: str) -> tuple[io.TextIOWrapper, Any]:
    text = io.TextIOWrapper(zf.open(name, "w", force_zip64=True), encoding="utf-8", newline="")
    return text, csv.writer(text)


def _metric_rows(
    zf: zipfile.ZipFile, name: str, series: metrics.Series, columns: list[str]
) -> None:
    text, out = _csv(zf, name)
    out.writerow(["epoch", *columns])
    for row in metrics.table(series, columns):
        out.writerow([row["epoch"], *("" if row.get(c) is None else row[c] for c in columns)])
    text.close()


def value_key(ref: tensors.TensorRef) -> str:
    """`<layer>.<variable>`: the variable's path after its layer (`hidden.kernel`)."""
    parts = ref.variable.split("/")
    rest = parts[parts.index(ref.layer_name) + 1 :] if ref.layer_name in parts[:-1] else parts[-1:]
    return f"{ref.layer_name}.{'.'.join(p for p in rest if p) or ref.kind}"


def _unique(key: str, used: set[str]) -> str:
    out, n = key, 1
    while out in used:
        n += 1
        out = f"{key}~{n}"
    used.add(out)
    return out


def _member(name: str) -> zipfile.ZipInfo:
    """An .npy inside an NPZ, with a fixed date: the same record exports the same bytes."""
    return zipfile.ZipInfo(name, FIXED_DATE)


def _stored(name: str) -> zipfile.ZipInfo:
    """A member kept as is: deflate saves little on floats and costs the server's CPU."""
    info = zipfile.ZipInfo(name, time.localtime()[:6])
    info.compress_type = zipfile.ZIP_STORED
    return info


class Histograms:
    """Each variable's per-epoch histograms, gathered while tensor_stats.csv is written."""

    def __init__(self) -> None:
        self.rows: dict[str, list[tuple[int, list[float], list[int]]]] = {}

    def add(self, ref: tensors.TensorRef, epoch: int, stats: dict[str, Any]) -> None:
        """One epoch's bin edges and counts."""
        key = f"{ref.kind}.{value_key(ref)}"
        edges, counts = stats.get("hist_edges") or [], stats.get("hist_counts") or []
        ok = len(edges) == len(counts) + 1
        self.rows.setdefault(key, []).append((epoch, edges if ok else [], counts if ok else []))

    def arrays(self) -> dict[str, np.ndarray]:
        """`<key>.epochs`, `<key>.edges` and `<key>.counts`, padded to the most bins seen."""
        out: dict[str, np.ndarray] = {}
        for key, rows in self.rows.items():
            bins = max((len(c) for _, _, c in rows), default=0)
            edges = np.full((len(rows), bins + 1 if bins else 0), np.nan)
            counts = np.zeros((len(rows), bins), dtype=np.int64)
            for i, (_, e, c) in enumerate(rows):
                edges[i, : len(e)], counts[i, : len(c)] = e, c
            out[f"{key}.epochs"] = np.asarray([r[0] for r in rows], dtype=np.int64)
            out[f"{key}.edges"], out[f"{key}.counts"] = edges, counts
        return out


class Export:
    """One simulation's zip, produced as an iterator of byte strings."""

    def __init__(self, sim: Simulation, full: bool = False, dtype: str = "float32") -> None:
        self.sim, self.full, self.dtype = sim, full, np.dtype(dtype)
        self.sink = Sink()

    def __iter__(self) -> Iterator[bytes]:
        self.zf = zipfile.ZipFile(self.sink, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=5)
        try:
            yield from self._entries()
        except GeneratorExit:  # the client went away: drop the unfinished archive quietly
            self.zf.fp = None
            raise
        self.zf.close()
        yield self.sink.take()

    def _entries(self) -> Iterator[bytes]:
        sim, zf = self.sim, self.zf
        with connection.cursor() as cur:
            diagnosed = diagnoses.was_diagnosed(cur, sim.id)
        zf.writestr("README.txt", readme(sim, self.full, self.dtype.name, diagnosed))
        zf.writestr("config.json", json.dumps(config_doc(sim), indent=2, default=str))
        if sim.experiment and sim.experiment.model_json:
            zf.writestr("model.json", json.dumps(sim.experiment.model_json, indent=2))
        if sim.status == "failed" and (sim.error or sim.message):
            zf.writestr("error.txt", error_text(sim))
        series = metrics.read(sim.id)
        main, extra = metrics.ordered_names(series)
        info = [m for m in metrics.RUN_INFO if m in series]
        _metric_rows(zf, "epochs.csv", series, main + extra + info)
        _metric_rows(zf, "extra_metrics.csv", series, extra)
        if diagnosed:
            self._diagnoses()
        yield self.sink.take()
        yield from self._stats()
        if self.full:
            for stem, kinds in VALUE_FILES.items():
                yield from self._values(stem, kinds)

    def _diagnoses(self) -> None:
        """diagnoses.json and evidence.csv (the last evidence epochs /diagnoses answers)."""
        with connection.cursor() as cur:
            found = diagnoses.read_all(cur, self.sim.id)
            docs = diagnoses.read_evidence(cur, self.sim.id, EVIDENCE_EPOCHS)
        self.zf.writestr("diagnoses.json", json.dumps(found, indent=2, default=str))
        text, out = _csv(self.zf, "evidence.csv")
        out.writerow(EVIDENCE_COLUMNS)
        out.writerows(evidence_rows(docs))
        text.close()

    def _stats(self) -> Iterator[bytes]:
        hists = Histograms()
        text, out = _csv(self.zf, "tensor_stats.csv")
        out.writerow(STAT_COLUMNS)
        for ref, _, epoch, stats in tensors.stat_rows(self.sim.id):
            out.writerow(
                [
                    ref.layer_index,
                    ref.layer_name,
                    ref.kind,
                    ref.variable,
                    epoch,
                    *("" if stats.get(k) is None else stats[k] for k in tensors.STAT_NAMES),
                    " ".join(stats.get("flags") or []),
                ]
            )
            hists.add(ref, epoch, stats)
        text.close()
        yield self.sink.take()
        with (
            self.zf.open("histograms.npz", "w", force_zip64=True) as raw,
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as npz,
        ):
            for key, array in hists.arrays().items():
                with npz.open(_member(f"{key}.npy"), "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)
        yield self.sink.take()

    def _values(self, stem: str, kinds: tuple[str, ...]) -> Iterator[bytes]:
        refs = tensors.variables(self.sim.id, kinds)
        if not refs:
            return
        used: set[str] = set()
        with (
            self.zf.open(_stored(f"{stem}.npz"), "w", force_zip64=True) as raw,
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as npz,
        ):
            for ref in refs:
                got = self._history(ref)
                if got is None:
                    continue
                key = _unique(value_key(ref), used)
                yield from self._npy(npz, key, got[1])
                yield from self._npy(npz, f"{key}.epochs", got[0])
        yield self.sink.take()

    def _history(self, ref: tensors.TensorRef) -> tuple[np.ndarray, np.ndarray] | None:
        """(epochs, values of every epoch) of one variable, in the export's dtype."""
        epochs = tensors.epochs_with_values(self.sim.id, ref)
        values: np.ndarray | None = None
        kept: list[int] = []
        for epoch, array in tensors.arrays(self.sim.id, ref, epochs):
            if values is None:
                values = np.empty((len(epochs), *array.shape), dtype=self.dtype)
            if array.shape != values.shape[1:]:
                continue  # the layer changed shape (a different model on resume): skip it
            with np.errstate(over="ignore"):  # beyond float16's range: inf, as asked
                values[len(kept)] = array
            kept.append(epoch)
        if values is None or not kept:
            return None
        return np.asarray(kept, dtype=np.int64), values[: len(kept)]

    def _npy(self, npz: zipfile.ZipFile, key: str, array: np.ndarray) -> Iterator[bytes]:
        """One .npy member, its rows written (and handed out) a few MB at a time."""
        with npz.open(_member(f"{key}.npy"), "w", force_zip64=True) as member:
            header = np.lib.format.header_data_from_array_1_0(array)
            np.lib.format.write_array_header_1_0(member, header)
            if array.ndim <= 1:
                member.write(np.ascontiguousarray(array).tobytes())
            else:
                step = max(1, ROWS_PER_WRITE // max(1, array[0].nbytes))
                for start in range(0, len(array), step):
                    member.write(np.ascontiguousarray(array[start : start + step]).tobytes())
                    yield self.sink.take()
        yield self.sink.take()


# The summary's deflated size per piece, measured on runs with trained-like values (random
# statistics and histograms): an estimate for the download button, not a promise.
FIXED_BYTES = 2_000  # README, config.json, the zip's own records
METRIC_CELL_BYTES = 9  # one metric value of one epoch in epochs.csv
STAT_ROW_BYTES = 60  # one row of tensor_stats.csv
HIST_ROW_BYTES = 260  # one epoch's 32-bin histogram in histograms.npz
JSON_RATIO = 0.25  # model.json and the configuration, deflated
# A stored zip64 member besides its name and data: local header, data descriptor, central
# entry (each with its zip64 extra); and an .npy header.
MEMBER_BYTES = 30 + 20 + 24 + 46 + 28
NPY_HEADER_BYTES = 128


def _metric_counts(sim: Simulation) -> tuple[int, int]:
    """(logged epochs, metric names) of a run."""
    try:
        with connection.cursor() as cursor:
            return metric_store.count(cursor, sim.id)
    except DatabaseError:
        log.warning("simulation %s: cannot count its epoch metrics", sim.id, exc_info=True)
        return 0, 0


def _summary_bytes(sim: Simulation, epochs: int, names: int) -> int:
    model = sim.experiment.model_json if sim.experiment else {}
    config = sim.experiment.config if sim.experiment else {}
    docs = len(json.dumps(model or {})) * 2 + len(json.dumps(config)) + len(json.dumps(sim.config))
    stat_rows = tensors.stat_count(sim.id)
    return int(
        FIXED_BYTES
        + docs * JSON_RATIO
        + epochs * (names + 1) * METRIC_CELL_BYTES * 1.3  # extra_metrics.csv repeats some
        + stat_rows * (STAT_ROW_BYTES + HIST_ROW_BYTES)
    )


def _values_bytes(sizes: list[tuple[tensors.TensorRef, int, list[int]]], itemsize: int) -> int:
    total = 0
    for stem, kinds in VALUE_FILES.items():
        inner = 0
        for ref, epochs, shape in (s for s in sizes if s[0].kind in kinds):
            key = value_key(ref)
            values = epochs * int(np.prod(shape, dtype=np.int64)) * itemsize
            inner += MEMBER_BYTES + 2 * len(key) + 11 + 2 * NPY_HEADER_BYTES
            inner += values + epochs * 8
        if inner:
            total += inner + 100 + MEMBER_BYTES + 2 * len(stem) + 8  # + the npz's directory end
    return total


def estimate(sim: Simulation) -> dict[str, Any]:
    """Sizes of the summary and full exports, from counts and shapes (nothing is read whole)."""
    sizes = tensors.value_sizes(sim.id, VALUE_KINDS)
    epochs, names = _metric_counts(sim)
    base = _summary_bytes(sim, epochs, names)
    return {
        "summary_bytes": base,
        "full_bytes": {d: base + _values_bytes(sizes, np.dtype(d).itemsize) for d in DTYPES},
        "epochs": epochs,
        "tensors": len(sizes),
    }
