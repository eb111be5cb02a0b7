"""Django against a real PostgreSQL: a fresh database on the session's server, migrated
(`web_db_url` and `django_ready` live in tests/integration/conftest.py: the orchestrator's
early-stop test reads the web's API too, and Django's test set-up runs once per session). `real_kafka` publishes commands
to the session's broker and `command_log` reads them back; `live_web` serves the product's web
server (daphne) on the same database for clients that need HTTP, such as the CLI.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from schemas.kafkaauth import KafkaSecurity

ROOT = Path(__file__).resolve().parents[3]


class Approving:
    """A pre-flight that passes everything: these tests run no orchestrator to answer it."""

    def ask(self, command: Any, timeout_s: float) -> Any:
        from schemas.status import StatusEvent

        return StatusEvent(status="accepted", command_id=command.command_id)


@pytest.fixture(autouse=True)
def approving_preflight() -> Iterator[None]:
    """Submissions skip the orchestrator's pre-flight (tests/e2e/test_preflight.py runs it)."""
    from web.simulations import preflight

    preflight.set_checker(Approving())
    yield
    preflight.set_checker(None)


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


@pytest.fixture()
def user(client: Any, make_user: Any) -> Any:
    """A new user, signed in on `client`."""
    user = make_user()
    client.force_login(user)
    return user


@pytest.fixture()
def real_kafka(kafka_bootstrap: str) -> Iterator[str]:
    """Publish through the real producer to the session's broker."""
    from web.simulations import commands

    commands.set_publisher(commands.KafkaPublisher(kafka_bootstrap, 10, KafkaSecurity()))
    yield kafka_bootstrap
    commands.set_publisher(None)


class CommandLog:
    """What reached `nnt.commands` after this log was opened, read back from the broker."""

    def __init__(self, bootstrap: str) -> None:
        from confluent_kafka import Consumer, TopicPartition

        from schemas import topics

        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"t-{uuid.uuid4()}",
                "enable.auto.commit": False,
            }
        )
        meta = self.consumer.list_topics(topics.COMMANDS, timeout=10).topics[topics.COMMANDS]
        starts = [
            TopicPartition(topics.COMMANDS, p, self._high(TopicPartition(topics.COMMANDS, p)))
            for p in meta.partitions
        ]
        self.consumer.assign(starts)
        self.seen: list[tuple[bytes, bytes]] = []

    def _high(self, partition: Any) -> int:
        """The partition's end offset; a fresh broker may still be electing its leader."""
        from confluent_kafka import KafkaException

        deadline = time.monotonic() + 30
        while True:
            try:
                return int(self.consumer.get_watermark_offsets(partition, timeout=5)[1])
            except KafkaException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def _drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msg = self.consumer.poll(0.2)
            if msg is not None and not msg.error():
                self.seen.append((msg.key() or b"", msg.value() or b""))

    def for_key(self, key: str, expect: int = 1, timeout: float = 20) -> list[Any]:
        """Commands keyed by `key`: waits until `expect` arrived, or drains briefly for 0."""
        from schemas.codecs import load_command

        deadline = time.monotonic() + timeout
        while True:
            found = [load_command(v) for k, v in self.seen if k == key.encode()]
            if (expect and len(found) >= expect) or time.monotonic() > deadline:
                return found
            self._drain(2.0 if not expect else 0.5)
            if not expect:
                return [load_command(v) for k, v in self.seen if k == key.encode()]

    def close(self) -> None:
        """Leave the broker."""
        self.consumer.close()


@pytest.fixture()
def command_log(real_kafka: str) -> Iterator[CommandLog]:
    """Commands published from now on, read back from the real broker."""
    log = CommandLog(real_kafka)
    yield log
    log.close()


@dataclass
class LiveWeb:
    """The product's web server (`python -m web serve`, daphne) on the test database."""

    url: str
    home: Path
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # the variables it was given beyond these


@contextmanager
def serving(
    home: Path, web_db_url: str, kafka_bootstrap: str, log: Path, **extra: str
) -> Iterator[LiveWeb]:
    """`python -m web serve` on the test database and broker, with `extra` variables."""
    from tests.services import free_port

    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": web_db_url,
        "NNT_HOME": str(home),
        "NNT_WEB_PORT": str(port),
        "NNT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "NNT_KAFKA_TIMEOUT_S": "10",
        "NNT_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "NNT_LIVE_BRIDGE": "false",
        "NNT_PREFLIGHT": "false",  # no orchestrator here (tests/e2e/test_preflight.py has one)
        **extra,
    }
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web", "serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/api/openapi.json", timeout=2) as resp:
                if resp.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the web server did not start; its log:\n{log.read_text()[-3000:]}")
        time.sleep(0.3)
    try:
        yield LiveWeb(url, home, log, dict(extra))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def live_web(
    django_ready: Path,
    web_db_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveWeb]:
    """A real HTTP server, as `nntracker up` runs it, for clients that need one (the CLI)."""
    log = tmp_path_factory.mktemp("live-web") / "web.log"
    with serving(django_ready, web_db_url, kafka_bootstrap, log) as web:
        yield web


# Upload limits small enough to cross in a test (web/simulations/uploads.py).
SMALL_LIMITS = {
    "NNT_MAX_UPLOAD_BYTES": str(1024 * 1024),
    "NNT_MAX_EXPERIMENT_UPLOAD_BYTES": str(2 * 1024 * 1024),
    "NNT_MAX_MODEL_BYTES": str(64 * 1024),
}


@pytest.fixture(scope="session")
def small_limits_web(
    django_ready: Path,
    web_db_url: str,
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveWeb]:
    """The web server with upload limits of 1 MiB per dataset, 2 MiB per submission and 64 KiB
    per model (in its `env`)."""
    log = tmp_path_factory.mktemp("small-limits-web") / "web.log"
    with serving(django_ready, web_db_url, kafka_bootstrap, log, **SMALL_LIMITS) as web:
        yield web


def record_run(owner_id: int, datasets: dict[str, str | None]) -> uuid.UUID:
    """A simulation of `owner_id` using `datasets`, as an orchestrator records it (store/)."""
    from django.conf import settings

    from store import runs
    from store.database import Database

    sid = uuid.uuid4()
    db = Database(settings.NNT_DATABASE_URL)
    try:
        runs.ensure(db)
        spec = {"owner_id": owner_id, "datasets": datasets}
        runs.RunRecords(db).add(sid, json.dumps(spec))
    finally:
        db.close()
    return sid
