"""Dataset storage per account, read from the shared record: what `max_storage_bytes` limits.

The web (before it stores an upload) and every orchestrator (when it creates runs) count here,
so they agree whichever host each runs on: a file named by its SHA-256 counts once however
many of the account's simulations use it, at its size on this host or in the database.
"""

from __future__ import annotations

from pathlib import Path

from store.blobs import Blobs
from store.database import Database
from store.runs import RunRecords


def held(db: Database, datasets_dir: Path, owner_id: int) -> dict[str, int]:
    """The account's dataset files: their path in this host's store -> bytes."""
    blobs = Blobs(db)
    files = {}
    for name in RunRecords(db).datasets_in_use(owner_id):
        path = datasets_dir / name
        files[str(path.resolve())] = path.stat().st_size if path.is_file() else blobs.size(name)
    return files
