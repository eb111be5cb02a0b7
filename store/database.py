"""One PostgreSQL connection per process, shared by threads under a lock, reconnected on loss."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator

import psycopg

log = logging.getLogger(__name__)


def one_line(exc: BaseException) -> str:
    """psycopg's message on one line (its hints come on lines of their own)."""
    return " ".join(str(exc).split())


def create_database(conn: psycopg.Connection, name: str) -> bool:
    """Create database `name` unless it exists; True when it was created. `conn`: an
    autocommit connection to the server's maintenance database (CREATE DATABASE cannot run
    inside a transaction)."""
    from psycopg import sql

    if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
        return False
    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return True


class StoreError(Exception):
    """The shared record cannot be read or written (the message names what and why)."""


class Database:
    """A lazily opened autocommit connection; `transaction()` holds it for one thread."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._conn: psycopg.Connection | None = None
        self._lock = threading.RLock()
        self._depth = 0

    def _connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = psycopg.connect(self.url, autocommit=True, connect_timeout=10)
            except psycopg.OperationalError as exc:
                raise StoreError(f"the database does not answer ({one_line(exc)})") from exc
        return self._conn

    @contextlib.contextmanager
    def cursor(self) -> Iterator[psycopg.Cursor]:
        """A cursor of the shared connection (inside a transaction when one is open)."""
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    yield cur
            except psycopg.OperationalError as exc:
                if self._depth == 0:
                    conn.close()  # reconnect on next use
                raise StoreError(f"the database stopped answering ({one_line(exc)})") from exc

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """One transaction for every statement this thread runs inside it."""
        with self._lock:
            conn = self._connection()
            self._depth += 1
            try:
                with conn.transaction():
                    yield
            finally:
                self._depth -= 1

    def close(self) -> None:
        """Close the connection (reopened on next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
