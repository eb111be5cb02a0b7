"""`nntracker db status`: what the time-series tables are and who uses their space.

store.dbstatus measures (all of its SQL is there, with how exact each figure is); this turns
its refusals into messages with the fix, and renders the report as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal
from urllib.parse import urlsplit

from infra.settings import InfraError
from store import dbstatus as store_dbstatus
from store.dbstatus import NO_SIMULATION as NO_SIMULATION
from store.dbstatus import Estimate
from store.dbstatus import SimulationUsage as SimulationUsage
from store.dbstatus import Status as Status
from store.dbstatus import TableUsage as TableUsage
from store.dbstatus import Usage as Usage
from store.dbstatus import UserUsage as UserUsage
from store.schema import SEGMENT_BY


def where(url: str) -> str:
    """host:port/database of a URL, without its credentials (for messages and reports)."""
    parts = urlsplit(url)
    host = parts.hostname or "local socket"
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path or '/'}"


def collect(url: str, connect_timeout: float = 5) -> Status:
    """Read the whole report from the database at `url`; InfraError with the fix if it cannot."""
    try:
        return store_dbstatus.collect(url, where(url), connect_timeout)
    except store_dbstatus.Unreachable as exc:
        raise InfraError(
            f"cannot connect to the database at {where(url)} ({exc}): check "
            "DATABASE_URL, or start the local stack with `nntracker up`"
        ) from None
    except store_dbstatus.NoTables as exc:
        raise InfraError(
            f"{exc}: `nntracker up` (or `docker compose run --rm provision`) creates them"
        ) from None


def size(n: float) -> str:
    """Bytes for people: 512 B, 1.5 KiB, 12.3 MiB."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # unreachable; keeps mypy sure of a return


def _ratio(u: Usage) -> str:
    return f"{u.raw_bytes / u.bytes:.1f}x" if u.bytes else "-"


def render(status: Status, by: Literal["user", "simulation"] = "user", top: int = 20) -> str:
    """The report as text: header lines, the tables, then users or simulations."""
    ts = status.mode == "timescaledb"
    mode = (
        f"TimescaleDB {status.timescaledb_version}: hypertables, columnstore segmented by "
        f"{SEGMENT_BY}"
        if ts
        else "native partitioning: raw bytes only (no columnstore)"
        + (
            f"; TimescaleDB {status.timescaledb_version} installed"
            if status.timescaledb_version
            else ""
        )
    )
    t = status.total
    stored = f"{size(t.bytes)} on disk"
    if ts:
        stored += f", {size(t.raw_bytes)} uncompressed ({_ratio(t)})"
    lines = [
        f"database     {status.database}",
        f"PostgreSQL   {status.server_version}",
        f"mode         {mode}",
        f"size         {size(status.database_bytes)} in all; time-series tables {stored}",
        f"shares       {_ESTIMATES[status.estimate]}",
        "",
    ]
    head = ["TABLE", "ROWS", "ON DISK"] + (["UNCOMPRESSED", "RATIO", "COLUMNSTORE"] if ts else [])
    body = [
        [u.table, f"{u.rows:,}", size(u.bytes)]
        + ([size(u.raw_bytes), _ratio(u), _columnstore(u)] if ts else [])
        for u in status.tables
    ]
    lines += _grid(head, body, left=1) + [""]
    items: Sequence[Usage] = status.users if by == "user" else status.simulations
    shown = list(items[:top] if top > 0 else items)
    if by == "user":
        head = ["USER", "SIMULATIONS", "ROWS", "ON DISK"]
        body = [[u.owner, str(u.simulations), f"{u.rows:,}", size(u.bytes)] for u in status.users]
    else:
        head = ["SIMULATION", "OWNER", "ROWS", "ON DISK"]
        body = [
            [s.simulation_id, s.owner, f"{s.rows:,}", size(s.bytes)] for s in status.simulations
        ]
    if ts:
        head += ["UNCOMPRESSED", "RATIO"]
        for row, u in zip(body, items, strict=True):
            row += [size(u.raw_bytes), _ratio(u)]
    if by == "simulation":
        head.append("NAME")
        for row, s in zip(body, status.simulations, strict=True):
            row.append(s.name or "")
    lines += _grid(head, body[: len(shown)], left=2 if by == "simulation" else 1)
    if not items:
        lines.append("(no rows in the time-series tables)")
    rest = items[len(shown) :]
    if rest:
        more = f"{len(rest)} more {by}{'s' if len(rest) > 1 else ''}"
        lines.append(f"… {more}, {size(sum(u.bytes for u in rest))} on disk (--top 0: all)")
    return "\n".join(lines)


_ESTIMATES: dict[Estimate, str] = {
    "segments": "per simulation: table bytes shared by the bytes of its rows and columnstore "
    "segments (rows exact)",
    "row share": "per simulation: table bytes shared by its rows (this TimescaleDB does not "
    "name compressed chunks; rows exact)",
    "raw": "per simulation: table bytes shared by the bytes of its rows (rows exact)",
}


def _columnstore(u: Usage) -> str:
    if not u.columnstore_bytes and not u.columnstore_rows:
        return "-"
    known = u.rows and u.columnstore_rows is not None
    share = f" ({100 * (u.columnstore_rows or 0) / u.rows:.0f}% of rows)" if known else ""
    return f"{size(u.columnstore_bytes or 0)}{share}"


def _grid(head: list[str], body: list[list[str]], left: int) -> list[str]:
    """Aligned columns: the first `left` and a last NAME to the left, numbers to the right."""
    widths = [max(len(r[i]) for r in [head, *body]) for i in range(len(head))]
    lefts = set(range(left)) | ({len(head) - 1} if head[-1] == "NAME" else set())

    def line(cells: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in lefts else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(head), *[line(r) for r in body]]
