"""Content-addressed dataset storage: `$NNT_HOME/datasets/<sha256><ext>`, a folder only the
web's (and the orchestrator's) user may enter."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

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
        # Trainer containers read it as another (unprivileged) user through a bind mount of
        # the file itself; other users of the host cannot, as the folder is closed to them.
        os.chmod(tmp, 0o644)
        os.replace(tmp, root / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return REF_PREFIX + name
