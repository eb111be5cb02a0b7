"""Content-addressed dataset storage: `$NNT_HOME/datasets/<sha256><ext>`, a folder only the
web's (and the orchestrator's) user may enter."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from django.conf import settings

from store import datasets, runs
from store.blobs import Blobs
from store.database import Database
from web.config import private_dir
from web.errors import Invalid

EXTENSIONS = (".npz", ".csv", ".arff", ".json", ".pickle", ".pkl", ".zip")
REF_PREFIX = "stored:"


def extension(filename: str, field: str) -> str:
    """The allowed extension of an upload name, or Invalid naming the field."""
    ext = Path(filename or "").suffix.lower()
    if ext not in EXTENSIONS:
        allowed = " ".join(EXTENSIONS)
        raise Invalid(
            "unsupported dataset file",
            {field: f"file type {ext or 'none'!r} is not one of {allowed}"},
        )
    return ext


def store(chunks: Iterable[bytes], ext: str, root: Path) -> str:
    """Write chunks under their SHA-256 and return the reference `stored:<sha256><ext>`."""
    private_dir(root)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=root, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in chunks:
                digest.update(chunk)
                handle.write(chunk)
        name = digest.hexdigest() + ext
        # Never world-readable: the orchestrator gives the run's user (a container's nobody,
        # or NNT_RUN_USER) its group when it starts a run on it (orchestrator/identity.py).
        os.chmod(tmp, 0o640)
        os.replace(tmp, root / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return REF_PREFIX + name


def share(ref: str, root: Path) -> None:
    """Put a stored upload in the database too, where orchestrators on any host read it
    (store/blobs.py): no folder is shared between hosts. Stored once per content."""
    path = root / ref.removeprefix(REF_PREFIX)
    db = Database(settings.NNT_DATABASE_URL)
    try:
        runs.ensure(db)
        Blobs(db).put(path.name, path)
    finally:
        db.close()


def path_of(chunks: Iterable[bytes], ext: str) -> str:
    """The store path `store` would give this content (resolved), without writing anything."""
    digest = hashlib.sha256()
    for chunk in chunks:
        digest.update(chunk)
    return str((settings.DATASETS_DIR / (digest.hexdigest() + ext)).resolve())


def held(user: Any) -> dict[str, int]:
    """The dataset files the user's runs hold (path -> bytes), counted from the run record
    the orchestrators share, exactly as they count them (store/datasets.py)."""
    db = Database(settings.NNT_DATABASE_URL)
    try:
        runs.ensure(db)
        return datasets.held(db, settings.DATASETS_DIR, user.pk)
    finally:
        db.close()


def used_bytes(user: Any) -> int:
    """Bytes of datasets the user's runs hold now (what max_storage_bytes limits)."""
    return sum(held(user).values())
