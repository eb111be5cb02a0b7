"""Session fixtures: the real Kafka broker and PostgreSQL, started by the product's own code.

There is no skip path for services: one that cannot start fails the session, under CI and
locally. Only what a local run may lack skips there (root, a TimescaleDB build), never in CI.
Set NNT_TEST_KAFKA / NNT_TEST_DATABASE_URL to reuse services that are already running, and
NNT_TEST_KAFKA_SASL to that broker's SASL_PLAINTEXT listener where every user of
tests.services.PASSWORDS logs in with PLAIN, authorized as tests.services.start_kafka's
broker does (StandardAuthorizer, super users User:ANONYMOUS and tests.services.SUPER_USERS).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests import services
from tests.accounts import TEST_SECRET

# Every component the tests start shares one command secret, so tests/accounts.py can sign
# commands as its users (the web and `nntracker up` sign with the same one).
os.environ.setdefault("NNT_COMMAND_SECRET", TEST_SECRET)


@pytest.fixture(scope="session")
def services_home() -> Iterator[Path]:
    """A temporary NNT_HOME for the whole session's services and files."""
    with tempfile.TemporaryDirectory(prefix="nnt-test-") as tmp:
        path = Path(tmp)
        path.chmod(0o755)  # the embedded PostgreSQL runs as another user
        yield path


@pytest.fixture(scope="session")
def kafka_broker(services_home: Path) -> Iterator[tuple[str, str]]:
    """A real broker with the product's topics: its PLAINTEXT and its SASL bootstrap (the
    SASL listener's users are authorized by ACLs; the PLAINTEXT clients are super users)."""
    if os.environ.get("NNT_TEST_KAFKA"):
        yield os.environ["NNT_TEST_KAFKA"], os.environ.get("NNT_TEST_KAFKA_SASL", "")
        return
    sasl_port = services.free_port()
    bootstrap, running = services.start_kafka(services_home, sasl_port)
    yield bootstrap, f"127.0.0.1:{sasl_port}"
    running.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka_broker: tuple[str, str]) -> str:
    """bootstrap.servers of the broker's PLAINTEXT listener."""
    return kafka_broker[0]


@pytest.fixture(scope="session")
def kafka_sasl_bootstrap(kafka_broker: tuple[str, str]) -> str:
    """bootstrap.servers of the broker's SASL_PLAINTEXT listener (PLAIN, services.PASSWORDS)."""
    if not kafka_broker[1]:
        pytest.fail("NNT_TEST_KAFKA is set but NNT_TEST_KAFKA_SASL is not: set it too")
    return kafka_broker[1]


@pytest.fixture(scope="session")
def pg_url(services_home: Path) -> Iterator[str]:
    """URL of a real PostgreSQL database with the time-series schema applied: TimescaleDB
    hypertables (built once per machine; required under CI=true or NNT_TIMESCALEDB=on), or
    native partitions where TimescaleDB cannot be had locally."""
    if os.environ.get("NNT_TEST_DATABASE_URL"):
        yield os.environ["NNT_TEST_DATABASE_URL"]
        return
    url, running = services.start_postgres(services_home)
    yield url
    running.stop()


@pytest.fixture(scope="session")
def timescaledb(pg_url: str) -> str:
    """TimescaleDB's version in the session's database, for the tests that are about it.

    They fail under CI=true and NNT_TIMESCALEDB=on, and skip only on a local run that could
    not build it or turned it off (the reason is printed at session start).
    """
    with psycopg.connect(pg_url) as conn:
        row = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
        ).fetchone()
    if row:
        return str(row[0])
    why = "the session's database has no TimescaleDB (see the [tests] line at session start)"
    if services.timescale_required() or os.environ.get("CI", "").lower() == "true":
        pytest.fail(why)
    pytest.skip(why)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: unit, integration or e2e."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "integration", "e2e", "security"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))


@pytest.fixture
def as_root() -> None:
    """For the tests of what a root orchestrator does: CI runs as root (a failure there), a
    local run as another user skips them."""
    if os.geteuid() != 0:
        if os.environ.get("CI"):
            pytest.fail("CI runs the tests as root: this test checks what root does")
        pytest.skip("only a root orchestrator switches users")
