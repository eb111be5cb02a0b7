"""Shared pieces of the hostile-input corpus: a canary file that code execution would create."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def canary(tmp_path: Path) -> Iterator[Path]:
    """A path that hostile payloads try to create; it must never exist after the refusal."""
    path = tmp_path / "canary-code-ran"
    yield path
    assert not path.exists(), "hostile input executed code (the canary file was created)"
