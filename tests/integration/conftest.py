"""Fixtures shared by the integration folders: the web tables and a running stream worker."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from tests.streamworker import WEB_TABLES, Worker


@pytest.fixture(scope="session")
def web_tables(pg_url: str) -> str:
    """pg_url with the web tables the status projection writes (minimal DDL if not migrated)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(WEB_TABLES.read_text())
    return pg_url


@pytest.fixture(scope="module")
def stream_worker(
    kafka_bootstrap: str, web_tables: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """`python -m stream_processors` against the session's Kafka and PostgreSQL, logging what
    it stored every second: what the trainers publish lands in PostgreSQL."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("NNT_STREAM_REPORT_S", "1")
        running = Worker(kafka_bootstrap, web_tables, tmp_path_factory.mktemp("stream-worker"))
    running.wait_ready()
    yield running
    running.stop()
