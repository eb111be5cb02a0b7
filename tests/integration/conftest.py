"""Fixtures shared by the integration folders: the web tables, a running stream worker, the
product images built by infra.images, and the web's own migrated database with Django set up
(once per session, whichever folder asks first: Django's test environment cannot be set up
twice)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from infra import images, timeseries
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


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


@pytest.fixture(scope="session")
def web_db_url(pg_url: str) -> str:
    """A new, empty database for the web on the session's PostgreSQL server."""
    name = f"nnt_web_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(pg_url, name)
    timeseries.apply(url)  # as the product does: hypertables on TimescaleDB (CI), else native
    return url


@pytest.fixture(scope="session")
def django_ready(web_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Configure Django from the environment, as the product does, and migrate."""
    home = tmp_path_factory.mktemp("nnt-web-home")
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "web.settings",
            "DATABASE_URL": web_db_url,
            "NNT_HOME": str(home),
            "NNT_ALLOWED_HOSTS": "testserver,localhost",
            "NNT_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # nothing listens: publishing must fail cleanly
            "NNT_KAFKA_TIMEOUT_S": "1",
            "NNT_LIVE_BRIDGE": "false",
        }
    )
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    yield home
