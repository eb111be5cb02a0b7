"""Django against a real PostgreSQL: a fresh database on the session's server, migrated.

Uses the session `pg_url` of tests/conftest.py and creates its own database on that server, so
other components' test tables never meet the web's migrations.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[3]
TIMESERIES_SQL = ROOT / "infra" / "sql" / "timeseries.sql"


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
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(TIMESERIES_SQL.read_text().replace("{partition_clause}", ""))
    return url


@pytest.fixture(scope="session")
def django_ready(web_db_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Configure Django from the environment, as the product does, and migrate."""
    home = tmp_path_factory.mktemp("nnt-web-home")
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "web.settings",
        "DATABASE_URL": web_db_url,
        "NNT_HOME": str(home),
        "NNT_ALLOWED_HOSTS": "testserver,localhost",
        "NNT_KAFKA_BOOTSTRAP": "127.0.0.1:9",  # nothing listens: publishing must fail cleanly
        "NNT_KAFKA_TIMEOUT_S": "1",
        "NNT_LIVE_BRIDGE": "false",
    })
    import django
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    yield home


@pytest.fixture()
def make_user(django_ready: Path) -> Any:
    """Factory of users with unique names (tests share one database)."""
    from django.contrib.auth import get_user_model

    def make(staff: bool = False, password: str = "pw-long-enough-1") -> Any:
        name = f"u{uuid.uuid4().hex[:10]}"
        return get_user_model().objects.create_user(name, password=password, is_staff=staff)

    return make


@pytest.fixture()
def client(django_ready: Path) -> Any:
    """Django test client that enforces CSRF like a browser session does."""
    from django.test import Client

    return Client(enforce_csrf_checks=True)
