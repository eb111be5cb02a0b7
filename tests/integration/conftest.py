"""Fixtures shared by the integration folders: the web tables, a running stream worker and the
product images built by infra.images."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from infra import images
from tests.streamworker import WEB_TABLES, Worker


def built(targets: list[str]) -> dict[str, str]:
    """Build the images with infra.images (layers cached by the engine: seconds when nothing
    changed); a build that fails fails the test, CI or not: the engine is set up here."""
    try:
        return images.build(targets)
    except images.ImagesError as exc:
        pytest.fail(f"image build: {exc}")


@pytest.fixture(scope="session")
def product_images() -> dict[str, str]:
    """Every default product image: target -> reference."""
    return built(list(images.DEFAULT_TARGETS))


@pytest.fixture(scope="session")
def trainer_image() -> str:
    """The trainer image the docker runtime runs."""
    return built(["trainer"])["trainer"]


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
