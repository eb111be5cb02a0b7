"""The export zip, streamed: configuration, epoch metrics, tensors as CSV and NPZ.

The zip is written to a sink that hands its bytes out after each piece, so a run with large
layers is sent while it is read, one tensor epoch in memory at a time (stacked NPZ arrays hold
one variable's history at a time).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from web.simulations import metrics, summary, tensors
from web.simulations.models import Simulation

STAT_COLUMNS = (
    "layer_index",
    "layer_name",
    "kind",
    "variable",
    "epoch",
    *tensors.STAT_NAMES,
    "flags",
)
VALUE_FILES = {"kernels": ("kernel", "weight"), "biases": ("bias",), "gradients": ("gradient",)}
README = """NN Tracker export of simulation {id} ({name})

config.json         the simulation, its plan (optimizer, loss, learning rate, fold),
                    the experiment's configuration, the model summary and final test metrics
model.json          the Keras model JSON as uploaded
error.txt           (a failed run only) the full error: the one-line reason, then the
                    traceback behind it (config.json has both as "message" and "error")
epochs.csv          one row per logged epoch, one column per metric (learning rate included)
extra_metrics.csv   the same rows, only the metrics chosen as extra_metrics
tensor_stats.csv    per layer, variable and epoch: mean, std, min, max, norm, zero fraction,
                    non-finite count, cosine with the previous epoch, health flags
activations.csv     the activation rows of tensor_stats.csv
kernels.csv, biases.csv, gradients.csv
                    every recorded value: layer, variable, epoch, flat index (C order), value
kernels.npz, biases.npz, gradients.npz
                    key "<layer>.<variable>": array (epochs, *shape); "<key>.epochs": its epochs
activations.npz     key "<layer>.<statistic>" over epochs; "<layer>.epochs"
"""


class Sink(io.RawIOBase):
    """A write-only, non-seekable stream whose written bytes are taken out piece by piece."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        """Bytes written since the last call."""
        out = b"".join(self.parts)
        self.parts.clear()
        return out


def filename(sim: Simulation) -> str:
    """`<name>-<id prefix>.zip`, safe for a Content-Disposition header."""
    base = "".join(c if c.isalnum() or c in "-_." else "-" for c in (sim.name or "simulation"))
    return f"{base.strip('-')[:60] or 'simulation'}-{str(sim.id)[:8]}.zip"


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
        "test_metrics": summary.test_metrics(sim.status, sim.message),
    }


def error_text(sim: Simulation) -> str:
    """error.txt of a failed run: the one-line reason, then the full error when it says more."""
    line, full = sim.headline, sim.error.strip()
    return f"{line}\n\n{full}\n" if full and full != line else f"{line or full}\n"


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


def _key(ref: tensors.TensorRef) -> str:
    return f"{ref.layer_name}.{ref.variable.rsplit('/', 1)[-1] or ref.kind}"


class Export:
    """One simulation's zip, produced as an iterator of byte strings."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
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
        zf.writestr("README.txt", README.format(id=sim.id, name=sim.name))
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
        yield self.sink.take()
        yield from self._stats()
        for stem, kinds in VALUE_FILES.items():
            yield from self._values(stem, kinds)

    def _stats(self) -> Iterator[bytes]:
        history = tensors.history(self.sim.id)
        for name, only in (("tensor_stats.csv", None), ("activations.csv", "activation")):
            text, out = _csv(self.zf, name)
            out.writerow(STAT_COLUMNS)
            for s in history:
                if only and s["kind"] != only:
                    continue
                for i, epoch in enumerate(s["epochs"]):
                    stats = [s["stats"][k][i] for k in tensors.STAT_NAMES]
                    out.writerow(
                        [
                            s["layer_index"],
                            s["layer_name"],
                            s["kind"],
                            s["variable"],
                            epoch,
                            *("" if v is None else v for v in stats),
                            " ".join(s["flags"][i]),
                        ]
                    )
            text.close()
            yield self.sink.take()
        arrays: dict[str, np.ndarray] = {}
        for s in history:
            if s["kind"] == "activation":
                arrays[f"{s['layer_name']}.epochs"] = np.asarray(s["epochs"], dtype=np.int64)
                for k in tensors.STAT_NAMES:
                    arrays[f"{s['layer_name']}.{k}"] = np.asarray(
                        [np.nan if v is None else v for v in s["stats"][k]], dtype=np.float64
                    )
        with self.zf.open("activations.npz", "w", force_zip64=True) as raw:
            np.savez(raw, **arrays)
        yield self.sink.take()

    def _values(self, stem: str, kinds: tuple[str, ...]) -> Iterator[bytes]:
        refs = tensors.variables(self.sim.id, kinds)
        text, out = _csv(self.zf, f"{stem}.csv")
        out.writerow(["layer_name", "variable", "epoch", "index", "value"])
        for ref in refs:
            for epoch, array in tensors.arrays(self.sim.id, ref):
                flat = array.reshape(-1)
                out.writerows(
                    (ref.layer_name, ref.variable, epoch, i, repr(float(v)))
                    for i, v in enumerate(flat)
                )
                text.flush()
                yield self.sink.take()
        text.close()
        yield from self._npz(stem, refs)

    def _npz(self, stem: str, refs: list[tensors.TensorRef]) -> Iterator[bytes]:
        with (
            self.zf.open(f"{stem}.npz", "w", force_zip64=True) as raw,
            zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_STORED) as npz,
        ):
            for ref in refs:
                got = list(tensors.arrays(self.sim.id, ref))
                shapes = {a.shape for _, a in got}
                if not got or len(shapes) != 1:
                    continue
                for key, value in (
                    (_key(ref), np.stack([a for _, a in got])),
                    (f"{_key(ref)}.epochs", np.asarray([e for e, _ in got])),
                ):
                    with npz.open(f"{key}.npy", "w", force_zip64=True) as member:
                        np.lib.format.write_array(member, value, allow_pickle=False)
                yield self.sink.take()
        yield self.sink.take()
