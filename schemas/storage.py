"""Dataset storage per account, counted one way for both places that enforce `max_storage_bytes`.

The web (before it stores an upload) and the orchestrator (when it creates runs) both count
what an account holds from the run record: with a database (DATABASE_URL) the shared
`nnt_run_record` (store/datasets.py), else the run directories of NNT_HOME
(`$NNT_HOME/runs/<simulation id>/run.json`, schemas/run.py, read by `held` below). Each run
names its owner's account id and its datasets in the content-addressed store. A file is
counted once however many of the owner's runs use it, and frees itself when the last run that
needs it is deleted (orchestrator/datastore.py), so deleting old experiments is the way back
under.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable
from pathlib import Path

from schemas.run import RUN_SPEC_FILE

LIMIT = "max_storage_bytes"


def held(runs_dir: Path, owner_id: int) -> dict[str, int]:
    """The dataset files the account's runs hold: resolved path -> size in bytes.

    Reads every run.json (the cost of one directory scan): call it only where a limit is set
    or an admin asks. A file already deleted, or a spec that does not parse, counts nothing.
    """
    paths: set[str] = set()
    for spec in runs_dir.glob(f"*/{RUN_SPEC_FILE}") if runs_dir.is_dir() else []:
        with contextlib.suppress(OSError, ValueError, AttributeError, KeyError, TypeError):
            doc = json.loads(spec.read_text())
            if doc.get("owner_id") == owner_id:
                paths.update(str(Path(p).resolve()) for p in doc["datasets"].values() if p)
    files: dict[str, int] = {}
    for path in paths:
        with contextlib.suppress(OSError):
            files[path] = Path(path).stat().st_size
    return files


def adding(files: dict[str, int], paths: Iterable[str]) -> int:
    """Bytes that `paths` (local dataset files) would add to what `files` already holds."""
    new: dict[str, int] = {}
    for raw in paths:
        path = Path(raw).resolve()
        if str(path) not in files and str(path) not in new:
            with contextlib.suppress(OSError):
                new[str(path)] = path.stat().st_size
    return sum(new.values())


def size_text(size: int) -> str:
    """`1610612736` -> `1.5 GiB` (bytes below 1 KiB as they are)."""
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"


def refusal(who: str, used: int, new: int, limit: int | None) -> str | None:
    """The message refusing `new` bytes of datasets on top of `used`, or None within `limit`."""
    if limit is None or used + new <= limit:
        return None
    return (
        f"{who}'s datasets would take {size_text(used + new)} ({size_text(used)} stored now "
        f"plus {size_text(new)} new), over their limit of {size_text(limit)} ({LIMIT}); "
        "delete old experiments (a dataset is freed with the last simulation that uses it) "
        "or ask an admin for more"
    )
