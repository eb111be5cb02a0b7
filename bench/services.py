"""Kafka and PostgreSQL for benchmarks: reuse running ones or start fresh ones like the tests."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tests import services


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
