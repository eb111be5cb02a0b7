"""Checkpoints in RUN_DIR/checkpoints: model weights, optimizer state and epoch, atomically.

Every checkpoint is taken at an epoch boundary: the state after exactly `epoch` whole epochs.
The last epoch's also holds the trained model as a Keras file (`model.keras`), which travels
with the checkpoint to the database and is the web's model download.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import keras
import numpy as np

log = logging.getLogger(__name__)

LATEST = "latest.json"
KEEP = 2
KERAS_FILE = "model.keras"


def directory(run_dir: Path) -> Path:
    """Where a run keeps its checkpoints."""
    return run_dir / "checkpoints"


def save(run_dir: Path, model: keras.Model, epoch: int, final: bool = False) -> Path:
    """Write the state after `epoch` epochs (`final`: with the model as a Keras file too);
    `latest.json` moves only once files are complete."""
    root = directory(run_dir)
    target = root / f"epoch-{epoch:06d}"
    tmp = root / f".tmp-{epoch:06d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    np.savez(tmp / "model.npz", *model.get_weights())
    optimizer = model.optimizer.variables if model.optimizer is not None else []
    np.savez(tmp / "optimizer.npz", *[keras.ops.convert_to_numpy(v) for v in optimizer])
    if final:
        _save_keras(model, tmp / KERAS_FILE)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(json.dumps({"epoch": epoch, "path": target.name}))
    os.replace(pointer, root / LATEST)
    _prune(root, keep=target.name)
    return target


def _save_keras(model: keras.Model, path: Path) -> None:
    """The trained model for download; a model Keras cannot save still finishes its run."""
    try:
        model.save(path)
    except Exception:  # noqa: BLE001 - the download is a convenience, never the run's end
        log.warning("cannot save the trained model as %s", path.name, exc_info=True)
        path.unlink(missing_ok=True)


def _prune(root: Path, keep: str) -> None:
    olds = sorted(p for p in root.glob("epoch-*") if p.name != keep)
    for old in olds[: max(0, len(olds) - (KEEP - 1))]:
        shutil.rmtree(old, ignore_errors=True)


def latest_epoch(run_dir: Path) -> int:
    """Epochs held by the latest checkpoint, 0 when there is none (cheap: no TensorFlow)."""
    pointer = directory(run_dir) / LATEST
    return int(json.loads(pointer.read_text())["epoch"]) if pointer.is_file() else 0


def restore(run_dir: Path, model: keras.Model) -> int:
    """Load the latest checkpoint into a compiled model; the number of epochs it holds, or 0."""
    pointer = directory(run_dir) / LATEST
    if not pointer.is_file():
        return 0
    state = json.loads(pointer.read_text())
    path = directory(run_dir) / state["path"]
    with np.load(path / "model.npz", allow_pickle=False) as data:
        model.set_weights([data[f"arr_{i}"] for i in range(len(data.files))])
    with np.load(path / "optimizer.npz", allow_pickle=False) as data:
        values = [data[f"arr_{i}"] for i in range(len(data.files))]
    if values:
        if not model.optimizer.built:  # a rewind in the same process finds it built
            model.optimizer.build(model.trainable_variables)
        for variable, value in zip(model.optimizer.variables, values, strict=True):
            variable.assign(value)
    log.info("resumed from %s after epoch %d", path.name, state["epoch"])
    return int(state["epoch"])
