"""The stream workers' one database sink: a single async psycopg connection on a thread
of its own, COPY into staging, then upsert.

Every batch is COPYed (binary: rows, or store.tables.Encoded built by the caller) straight
into its table; a batch that holds an already stored key (a replay) is COPYed instead into
a session-local TEMP staging table and moved with `INSERT ... SELECT ... ON CONFLICT DO
NOTHING`, so a replayed event adds nothing.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import psycopg

from store.database import StoreError, one_line
from store.tables import Encoded, Row, Table

log = logging.getLogger(__name__)
T = TypeVar("T")
Work = Callable[["psycopg.AsyncConnection[tuple]"], Awaitable[T]]


def is_schema_error(exc: psycopg.Error) -> bool:
    """Whether the database refused the write for its schema or rights, not the content.

    SQLSTATE class 42 (undefined table or column, insufficient privilege, datatype
    mismatch...) and 3F (invalid schema) are psycopg's ProgrammingError; a read-only
    transaction (25006: a standby after a failover) passes too. Every event of every batch
    would fail the same way, so the write is retried until someone fixes the database;
    dead-lettering them would throw good events away.
    """
    return isinstance(exc, (psycopg.ProgrammingError, psycopg.errors.ReadOnlySqlTransaction))


def _stop(loop: asyncio.AbstractEventLoop) -> None:
    """Stop a sink's loop from another thread (once: a closed loop is left alone)."""
    if not loop.is_closed():
        loop.call_soon_threadsafe(loop.stop)


class SinkError(StoreError):
    """The database refused a batch for its content (not for being unreachable)."""


class Sink:
    """Serialises every write of the worker through one connection, one transaction each.

    The connection lives on the sink's own thread and event loop: a write's round trips to
    PostgreSQL go on as soon as each answer arrives, instead of waiting for the worker's
    loop to come round between its batches' decoding (worth about a tenth of the ingest
    rate, bench/ingest.py). The work handed to `run` runs on that thread: it may touch only
    its connection and what it was given (or locked state, as outputs.DiagnosisLive).
    """

    def __init__(self, url: str, retry_max_s: float = 30.0) -> None:
        self._url = url
        self._retry_max_s = retry_max_s
        self._conn: psycopg.AsyncConnection[tuple] | None = None
        self._staged: set[str] = set()
        self._lock = asyncio.Lock()  # used on the sink's loop only
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    @property
    def busy(self) -> bool:
        """A write is in flight or waiting for the connection."""
        return self._lock.locked()

    def _sink_loop(self) -> asyncio.AbstractEventLoop:
        """The sink's event loop, on its thread (started at first use)."""
        with self._starting:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=loop.run_forever, name="nnt-sink", daemon=True
                )
                self._thread.start()
                self._loop = loop
                # A sink dropped without close() (a script's, a test's) ends its thread too.
                weakref.finalize(self, _stop, loop)
            return self._loop

    async def _on_sink_loop(self, work: Coroutine[Any, Any, T]) -> T:
        """Run `work` on the sink's loop and wait for it; a stop request (cancel) waits for
        it to finish, then stops the caller."""
        done: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(
            work, self._sink_loop()
        )
        waiting = asyncio.wrap_future(done)
        try:
            return await asyncio.shield(waiting)
        except asyncio.CancelledError:
            if not waiting.done():
                log.info("stopping: finishing the batch in hand first")
                await waiting
            raise

    async def open(self) -> None:
        """Connect now (at start), so a missing database shows in the log before any event."""

        async def connect() -> None:
            async with self._lock:
                await self.connect()

        await self._on_sink_loop(connect())

    async def connect(self) -> psycopg.AsyncConnection[tuple]:
        """The open connection, (re)connecting with exponential back-off until it works."""
        delay = 0.5
        while self._conn is None or self._conn.closed:
            try:
                self._conn = await psycopg.AsyncConnection.connect(self._url, autocommit=True)
                self._staged.clear()
                log.info("database connected")
            except psycopg.OperationalError as exc:
                log.warning("database unreachable (%s); retrying in %.1fs", one_line(exc), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
        return self._conn

    async def run(self, work: Work[T]) -> T:
        """Run `work` in one committed transaction; a stop request waits for it to finish.

        Faust stops agents by cancelling them. The write runs on the sink's loop, shielded,
        so SIGTERM lets the batch in hand commit before the worker acks it and exits; if the
        database is down at that moment the worker waits (a second signal or SIGKILL ends
        it, leaving the batch unacked and thus redelivered).
        """
        return await self._on_sink_loop(self._run(work))

    async def _run(self, work: Work[T]) -> T:
        """Run `work` in one transaction; retry while the database is unreachable.

        It returns only once the transaction committed, so the caller's events (acked by
        Faust after the caller returns) are never acked for rows that were not written.
        Schema errors (is_schema_error) are retried too, logged as errors. Content errors
        raise SinkError at once: retrying them would stall the partition.
        """
        delay = 0.5
        async with self._lock:
            while True:
                conn = await self.connect()
                try:
                    async with conn.transaction():
                        return await work(conn)
                except psycopg.OperationalError as exc:
                    log.warning(
                        "database write failed (%s); retrying in %.1fs", one_line(exc), delay
                    )
                    await self._drop()
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)
                except psycopg.Error as exc:
                    self._staged.clear()  # a rolled-back transaction took its CREATE TEMP with it
                    if not is_schema_error(exc):
                        raise SinkError(f"{type(exc).__name__}: {one_line(exc)}") from exc
                    log.error(
                        "database schema refused the write (%s: %s); fix the database, "
                        "retrying in %.1fs",
                        type(exc).__name__,
                        one_line(exc),
                        delay,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._retry_max_s)

    async def run_until_written(self, work: Work[T], what: str) -> T:
        """Like run(), but a content error is retried with back-off too (logged), never
        dropped: for derived rows that must reach the database, whose events stay unacked."""
        delay = 0.5
        while True:
            try:
                return await self.run(work)
            except SinkError as exc:
                log.error("%s refused (%s); retrying in %.1fs", what, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)

    async def close(self) -> None:
        """Close the connection (idle: waits for the write in hand) and end the sink's
        thread; a later write starts them again."""
        if self._loop is None:
            return

        async def drop() -> None:
            async with self._lock:
                await self._drop()

        await self._on_sink_loop(drop())
        with self._starting:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        _stop(loop)
        if thread is not None:
            await asyncio.to_thread(thread.join)
        loop.close()

    async def _drop(self) -> None:
        if self._conn is not None and not self._conn.closed:
            await self._conn.close()
        self._conn = None

    async def copy(
        self,
        conn: psycopg.AsyncConnection[tuple],
        table: Table,
        rows: Sequence[Row] | Encoded,
        update: Sequence[str] = (),
    ) -> int:
        """Insert rows whose key is new (or, with `update`, upsert them); returns rows written.

        The common case (no replay) is one binary COPY straight into the table, as fast as
        PostgreSQL ingests. When a key already exists the COPY fails as a whole; its
        savepoint is rolled back and the rows go through a staging table and
        `INSERT ... ON CONFLICT`, so a replayed event adds nothing. With `update` (the
        conflict key's columns) existing rows take the new values: absolute values, as
        replay-safe as DO NOTHING. `rows` may also be encoded already (store.tables.Encoded):
        the hot path's rows are built in one pass, at a third of the CPU of rows written one
        by one.
        """
        count = rows.rows if isinstance(rows, Encoded) else len(rows)
        if not count:
            return 0
        if not update:
            try:
                async with conn.transaction():  # a savepoint inside the batch's transaction
                    await self._copy(conn, table.name, table, rows)
                return count
            except psycopg.errors.UniqueViolation:
                log.info("%s: a batch holds replayed keys; inserting only the new rows", table.name)
        stage = await self._stage(conn, table)
        await self._copy(conn, stage, table, rows)
        cols = ", ".join(table.columns)
        conflict = "DO NOTHING"
        if update:
            sets = ", ".join(f"{c} = EXCLUDED.{c}" for c in table.columns if c not in update)
            conflict = f"({', '.join(update)}) DO UPDATE SET {sets}"
        cur = await conn.execute(
            f"INSERT INTO {table.name} ({cols}) SELECT {cols} FROM {stage} ON CONFLICT {conflict}"
        )
        return max(cur.rowcount, 0)

    @staticmethod
    async def _copy(
        conn: psycopg.AsyncConnection[tuple],
        target: str,
        table: Table,
        rows: Sequence[Row] | Encoded,
    ) -> None:
        """One COPY of rows into `target` (the table or its staging twin)."""
        cols = ", ".join(table.columns)
        async with (
            conn.cursor() as cur,
            cur.copy(f"COPY {target} ({cols}) FROM STDIN (FORMAT BINARY)") as cp,
        ):
            if isinstance(rows, Encoded):
                await cp.write(rows.data)
                return
            cp.set_types(list(table.types))
            for row in rows:
                await cp.write_row(row)

    async def _stage(self, conn: psycopg.AsyncConnection[tuple], table: Table) -> str:
        stage = f"_stage_{table.name}"
        if stage not in self._staged:
            await conn.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {stage} ON COMMIT DELETE ROWS AS "
                f"SELECT {', '.join(table.columns)} FROM {table.name} WITH NO DATA"
            )
            self._staged.add(stage)
        return stage
