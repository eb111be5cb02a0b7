"""What downloads read from `nnt_blob` a slice at a time: the trained model of a finished run.

The orchestrator keeps a run's newest checkpoint in `nnt_blob` as an uncompressed tar named
`checkpoint/<id>`, in parts of PART_BYTES (store/blobs.py writes them, store/runs.py creates
the table); the web finds the model file in it from the tar headers and reads it here, never
whole in memory. Nothing here writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.dbapi import DBAPICursor

SLICE_SQL = "SELECT substring(data from %s for %s) FROM nnt_blob WHERE name = %s AND part = %s"
HAS_BLOBS_SQL = "SELECT to_regclass('nnt_blob') IS NOT NULL"


def has_blobs(cursor: DBAPICursor) -> bool:
    """Whether this database holds `nnt_blob` (a web with its own database may not)."""
    cursor.execute(HAS_BLOBS_SQL)
    row = cursor.fetchone()
    return bool(row and row[0])


def read_slice(cursor: DBAPICursor, name: str, part: int, start: int, length: int) -> bytes | None:
    """Bytes [start, start + length) of one part of a blob (fewer at its end); None when the
    blob has no such part."""
    cursor.execute(SLICE_SQL, [start + 1, length, name, part])
    row = cursor.fetchone()
    return None if row is None or row[0] is None else bytes(row[0])
