"""The stream-processor tests of this folder call the shared worker `worker`."""

from __future__ import annotations

import pytest

from tests.streamworker import Worker


@pytest.fixture(scope="module")
def worker(stream_worker: Worker) -> Worker:
    """The module's running worker (tests/integration/conftest.py)."""
    return stream_worker
