"""A finished run's trained model as a Keras file, read from its final checkpoint.

The trainer writes `model.keras` into the checkpoint of a run's last epoch
(trainer/checkpoints.py). With a database the orchestrator keeps a run's newest checkpoint in
`nnt_blob` as an uncompressed tar named `checkpoint/<id>`, in parts of PART_BYTES
(orchestrator/shared.py); without one it stays in the run directory under $NNT_HOME/runs, which
the web reads on a single host. The file is found from the tar headers and sent a part at a
time: never whole in memory.
"""

from __future__ import annotations

import json
import logging
import tarfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TypeVar

from django.conf import settings
from django.db import DatabaseError, connection

from store import exports
from store.blobs import PART_BYTES
from web.errors import NotFound
from web.simulations.models import Simulation

log = logging.getLogger(__name__)
KERAS_FILE = "model.keras"
READ_BYTES = 1 << 20
BLOCK = tarfile.BLOCKSIZE
MAX_MEMBERS = 64  # a checkpoint holds a handful of files
ACTIVE = ("queued", "starting", "running", "paused")
T = TypeVar("T")


@dataclass
class KerasFile:
    """Where the trained model is: its size and its bytes, read when iterated."""

    size: int
    chunks: Iterator[bytes]


def _one(read: Callable[..., T], *args: object) -> T | None:
    """What a store read of nnt_blob answers; None when it cannot be read."""
    try:
        with connection.cursor() as cursor:
            return read(cursor, *args)
    except DatabaseError:
        log.warning("cannot read nnt_blob (%s)", args[:2], exc_info=True)
        return None


def _read(name: str, offset: int, length: int) -> bytes:
    """Bytes [offset, offset + length) of a blob (every part but the last is full)."""
    out = bytearray()
    while length > 0:
        part, at = divmod(offset, PART_BYTES)
        n = min(length, PART_BYTES - at)
        data = _one(exports.read_slice, name, part, at, n)
        if data is None:
            break
        out += data
        if len(data) < n:
            break
        offset, length = offset + n, length - n
    return bytes(out)


def _locate(name: str) -> tuple[int, int] | None:
    """(offset, size) of the Keras file inside the tar blob, from its headers alone."""
    offset = 0
    for _ in range(MAX_MEMBERS):
        block = _read(name, offset, BLOCK)
        if len(block) < BLOCK or block == bytes(BLOCK):
            return None
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError:
            log.warning("blob %s: not a tar archive", name)
            return None
        if info.isfile() and PurePosixPath(info.name).name == KERAS_FILE:
            return offset + BLOCK, info.size
        offset += BLOCK + -(-info.size // BLOCK) * BLOCK
    return None


def _blob_chunks(name: str, offset: int, size: int) -> Iterator[bytes]:
    end = offset + size
    while offset < end:
        data = _read(name, offset, min(READ_BYTES, end - offset))
        if not data:
            raise OSError(f"blob {name} ended before its model file")
        offset += len(data)
        yield data


def _from_database(simulation_id: uuid.UUID) -> KerasFile | None:
    if not _one(exports.has_blobs):
        return None
    name = f"checkpoint/{simulation_id}"
    found = _locate(name)
    if found is None:
        return None
    return KerasFile(found[1], _blob_chunks(name, *found))


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while data := fh.read(READ_BYTES):
            yield data


def _from_run_dir(simulation_id: uuid.UUID) -> KerasFile | None:
    root = Path(settings.RUNS_DIR) / str(simulation_id) / "checkpoints"
    try:
        latest = str(json.loads((root / "latest.json").read_text())["path"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    path = root / latest / KERAS_FILE
    if Path(latest).name != latest or not path.is_file():  # a plain folder name, nothing else
        return None
    return KerasFile(path.stat().st_size, _file_chunks(path))


def why_none(sim: Simulation) -> str:
    """Why a run has no trained model to download, and what to do."""
    where = f"epoch {sim.epoch} of {sim.total_epochs}"
    if sim.status in ACTIVE:
        return (
            f"this run is {sim.status} ({where}): its trained model is kept when it finishes; "
            "download it then"
        )
    if sim.status == "stopped":
        return (
            f"this run was stopped after {where}: a trained model is kept when a run finishes "
            "all its epochs; resume it to train the rest"
        )
    if sim.status == "failed":
        return (
            "this run failed, so no trained model was kept; the export "
            f"(/api/simulations/{sim.id}/export) has what it recorded"
        )
    return (
        "no trained model is stored for this run: one is kept when a run submitted to NN "
        "Tracker finishes (runs of your own scripts keep none: save them with model.save); "
        "if it finished a moment ago, try again in a few seconds"
    )


def find(sim: Simulation) -> KerasFile:
    """The run's trained model, or NotFound saying why there is none."""
    if sim.status != "finished":
        raise NotFound(why_none(sim))
    found = _from_database(sim.id) or _from_run_dir(sim.id)
    if found is None:
        raise NotFound(why_none(sim))
    return found
