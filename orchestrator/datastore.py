"""Content-addressed dataset store (`$NNT_HOME/datasets/<sha256>.<ext>`), reference-counted by run dirs."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from pathlib import Path

from schemas.run import RUN_SPEC_FILE

log = logging.getLogger(__name__)

STORED_NAME = re.compile(r"^[0-9a-f]{64}\.[a-z0-9]{1,8}$")
EXTENSION = re.compile(r"^[a-z0-9]{1,8}$")


def extension_of(name: str) -> str:
    """A safe store extension from a file or URL path ('bin' when none fits)."""
    suffix = Path(name).suffix.lower().lstrip(".")
    return suffix if EXTENSION.match(suffix) else "bin"


def add(store: Path, tmp: Path, digest: str, ext: str) -> Path:
    """Move a complete temporary file into the store under its digest (identical content once)."""
    target = store / f"{digest}.{ext}"
    if target.exists():
        tmp.unlink(missing_ok=True)
    else:
        tmp.chmod(0o640)  # runs as another user get its group at start (identity.share)
        os.replace(tmp, target)
    return target


def referenced(runs_dir: Path) -> set[str]:
    """Dataset paths that some run directory still needs."""
    used: set[str] = set()
    for spec in runs_dir.glob(f"*/{RUN_SPEC_FILE}"):
        with contextlib.suppress(OSError, ValueError):
            datasets = json.loads(spec.read_text()).get("datasets", {})
            used.update(str(Path(p).resolve()) for p in datasets.values() if p)
    return used


def release(store: Path, paths: list[str], used: set[str]) -> list[Path]:
    """Delete those of `paths` that live in the store and are not in `used` (resolved paths)."""
    removed = []
    for raw in paths:
        path = Path(raw).resolve()
        if path.parent != store.resolve() or not STORED_NAME.match(path.name):
            continue  # never delete what the store does not own
        if str(path) not in used and path.exists():
            path.unlink(missing_ok=True)
            removed.append(path)
            log.info("dataset %s removed: no simulation needs it", path.name)
    return removed
