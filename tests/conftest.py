"""Session fixtures: the real Kafka broker and PostgreSQL, started by the product's own code.

There is no skip path: a service that cannot start fails the session, under CI and locally.
Set NNT_TEST_KAFKA / NNT_TEST_DATABASE_URL to reuse services that are already running, and
NNT_TEST_KAFKA_SASL to that broker's SASL_PLAINTEXT listener where tests.services.SASL_USER
logs in with PLAIN.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    """A real broker with the product's topics: its PLAINTEXT and its SASL bootstrap."""
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
    """bootstrap.servers of the broker's SASL_PLAINTEXT listener (PLAIN, services.SASL_USER)."""
    if not kafka_broker[1]:
        pytest.fail("NNT_TEST_KAFKA is set but NNT_TEST_KAFKA_SASL is not: set it too")
    return kafka_broker[1]


@pytest.fixture(scope="session")
def pg_url(services_home: Path) -> Iterator[str]:
    """URL of a real PostgreSQL database with the time-series schema applied."""
    if os.environ.get("NNT_TEST_DATABASE_URL"):
        yield os.environ["NNT_TEST_DATABASE_URL"]
        return
    url, running = services.start_postgres(services_home)
    yield url
    running.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test by its folder: unit, integration or e2e."""
    for item in items:
        parts = Path(str(item.fspath)).parts
        for kind in ("unit", "integration", "e2e", "security"):
            if kind in parts:
                item.add_marker(getattr(pytest.mark, kind))
