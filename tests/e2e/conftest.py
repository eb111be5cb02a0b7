"""One plain `nntracker up` (no demo) shared by the e2e modules that only need the product
running: starting the whole stack costs about a minute on these machines."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.stack import ROOT, UP_LINE, UpProcess, start_up

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def plain_stack() -> Iterator[UpProcess]:
    """The stack, up; its last log lines go to test-artifacts/plain-stack.log at the end."""
    # Not under pytest's basetemp: that is private to root (0700), and the embedded PostgreSQL
    # runs as its own user.
    with tempfile.TemporaryDirectory(prefix="nnt-plain-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        up = start_up(home, demo=False)
        try:
            up.wait_for(UP_LINE, timeout=420)
            yield up
        finally:
            if up.proc.poll() is None:
                up.interrupt()
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "plain-stack.log").write_text("\n".join(up.lines[-3000:]) + "\n")
