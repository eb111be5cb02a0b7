"""Files every host can reach, in `nnt_blob`: uploaded datasets and run checkpoints.

A blob is written in parts of at most `PART_BYTES` in one transaction, so a reader sees all
of it or none; datasets are named by their SHA-256 (`<sha256>.<ext>`), which `get` checks.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from store.database import Database, StoreError

PART_BYTES = 4 * 1024 * 1024
CONTENT_NAME = re.compile(r"^([0-9a-f]{64})\.[a-z0-9]{1,8}$")


class Blobs:
    """Put, get and drop named files."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def has(self, name: str) -> bool:
        """True when the blob is stored."""
        with self.db.cursor() as cur:
            cur.execute("SELECT 1 FROM nnt_blob WHERE name = %s AND part = 0", (name,))
            return cur.fetchone() is not None

    def size(self, name: str) -> int:
        """The blob's bytes (0 when there is none)."""
        with self.db.cursor() as cur:
            cur.execute(
                "SELECT coalesce(sum(length(data)), 0) FROM nnt_blob WHERE name = %s", (name,)
            )
            row = cur.fetchone()
        return int(row[0]) if row else 0

    def put(self, name: str, path: Path) -> None:
        """Store a file under `name` (a content-named one is stored once)."""
        if CONTENT_NAME.match(name) and self.has(name):
            return
        with path.open("rb") as fh:
            self._replace(name, fh)

    def put_bytes(self, name: str, data: bytes) -> None:
        """Store (or replace) `data` under `name`."""
        self._replace(name, io.BytesIO(data))

    def _replace(self, name: str, source: BinaryIO) -> None:
        with self.db.transaction(), self.db.cursor() as cur:
            cur.execute("DELETE FROM nnt_blob WHERE name = %s", (name,))
            part, chunk = 0, source.read(PART_BYTES)
            while True:  # an empty file is one empty part
                cur.execute(
                    "INSERT INTO nnt_blob (name, part, data) VALUES (%s, %s, %s)",
                    (name, part, chunk),
                )
                part, chunk = part + 1, source.read(PART_BYTES)
                if not chunk:
                    break

    def _parts(self, name: str) -> Iterator[bytes]:
        with self.db.cursor() as cur:
            part = 0
            while True:
                cur.execute("SELECT data FROM nnt_blob WHERE name = %s AND part = %s", (name, part))
                row = cur.fetchone()
                if row is None:
                    return
                yield bytes(row[0])
                part += 1

    def get_bytes(self, name: str) -> bytes | None:
        """The blob's bytes, or None when there is none."""
        return b"".join(self._parts(name)) if self.has(name) else None

    def get(self, name: str, dest: Path) -> bool:
        """Write the blob to `dest` (atomically); False when there is none."""
        if not self.has(name):
            return False
        digest = hashlib.sha256()
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".blob-")
        try:
            with os.fdopen(fd, "wb") as out:
                for data in self._parts(name):
                    digest.update(data)
                    out.write(data)
            match = CONTENT_NAME.match(name)
            if match and digest.hexdigest() != match.group(1):
                raise StoreError(f"blob {name}: its content does not match its SHA-256")
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def drop(self, name: str) -> None:
        """Delete the blob."""
        with self.db.cursor() as cur:
            cur.execute("DELETE FROM nnt_blob WHERE name = %s", (name,))
