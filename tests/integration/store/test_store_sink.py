"""The stream workers' sink on a real PostgreSQL: its work runs on the sink's own thread, a
stop request lets the write in hand commit, and close() ends the thread."""

from __future__ import annotations

import asyncio
import threading

import psycopg
import pytest

from store.sink import Sink
from tests.timeseries_data import empty_database

pytestmark = pytest.mark.integration


@pytest.fixture
def url(pg_url: str) -> str:
    db = empty_database(pg_url, "nnt_sink")
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("CREATE TABLE written (n integer PRIMARY KEY)")
    return db


def rows(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [n for (n,) in conn.execute("SELECT n FROM written ORDER BY n")]


def test_a_stopped_write_commits_first_on_the_sinks_thread(url: str) -> None:
    ran_on: list[str] = []

    async def slow_write(conn: psycopg.AsyncConnection[tuple]) -> str:
        ran_on.append(threading.current_thread().name)
        await conn.execute("INSERT INTO written VALUES (1)")
        await conn.execute("SELECT pg_sleep(0.3)")
        return "committed"

    async def main() -> None:
        sink = Sink(url)
        await sink.open()
        write = asyncio.ensure_future(sink.run(slow_write))
        await asyncio.sleep(0.1)
        assert sink.busy and rows(url) == []  # in flight, not committed yet
        write.cancel()  # what Faust does to an agent on SIGTERM
        with pytest.raises(asyncio.CancelledError):
            await write
        assert rows(url) == [1]  # the stop waited for COMMIT
        await sink.close()
        assert "nnt-sink" not in [t.name for t in threading.enumerate()]
        assert await sink.run(lambda conn: conn.execute("SELECT 1")) is not None  # restarts
        await sink.close()

    asyncio.run(main())
    assert ran_on == ["nnt-sink"]


def test_a_refused_write_raises_in_the_caller_and_rolls_back(url: str) -> None:
    async def twice(conn: psycopg.AsyncConnection[tuple]) -> None:
        await conn.execute("INSERT INTO written VALUES (2)")
        await conn.execute("INSERT INTO written VALUES (2)")

    async def main() -> None:
        sink = Sink(url)
        with pytest.raises(Exception, match="UniqueViolation"):
            await sink.run(twice)
        await sink.close()

    asyncio.run(main())
    assert rows(url) == []
