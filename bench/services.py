"""Kafka and PostgreSQL for benchmarks: reuse running ones or start fresh ones like the tests."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from schemas import auth
from tests import services


def command_secret() -> str:
    """The secret this run's workers and trainers share (stream workers store only events
    signed with their run's key): NNT_COMMAND_SECRET, else one made now and put in the
    environment the workers inherit."""
    return os.environ.setdefault("NNT_COMMAND_SECRET", secrets.token_hex(32))


def run_key(simulation_id: uuid.UUID | str) -> str:
    """A run's event key under command_secret(), as the orchestrator hands it to a trainer."""
    return auth.run_key(command_secret(), uuid.UUID(str(simulation_id)))


@contextlib.contextmanager
def kafka() -> Iterator[str]:
    """A broker's bootstrap address (NNT_TEST_KAFKA, or a fresh one for this run)."""
    if os.environ.get("NNT_TEST_KAFKA"):
        yield os.environ["NNT_TEST_KAFKA"]
        return
    with tempfile.TemporaryDirectory(prefix="nnt-bench-") as tmp:
        bootstrap, running = services.start_kafka(Path(tmp))
        try:
            yield bootstrap
        finally:
            running.stop()
