"""One plain `nntracker up` (no demo) shared by the e2e modules that only need the product
running (starting the whole stack costs about a minute here), and per-module access to it as
the module's USER / PASSWORD."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.e2e.stack import ROOT, UpProcess, launch_chromium, running_stack, token_session

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def plain_stack() -> Iterator[UpProcess]:
    """The stack, up; its last log lines go to test-artifacts/plain-stack.log at the end."""
    with running_stack("nnt-plain-") as up:
        try:
            yield up
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            (ARTIFACTS / "plain-stack.log").write_text("\n".join(up.lines[-3000:]) + "\n")


@pytest.fixture(scope="module")
def stack(plain_stack: UpProcess, request: pytest.FixtureRequest) -> UpProcess:
    """The shared stack, with the module's USER (PASSWORD) account in it."""
    plain_stack.ensure_user(request.module.USER, request.module.PASSWORD)
    return plain_stack


@pytest.fixture(scope="module")
def base(stack: UpProcess) -> str:
    """The web's address."""
    return f"http://127.0.0.1:{stack.ports['web']}"


@pytest.fixture(scope="module")
def api(base: str, request: pytest.FixtureRequest) -> Any:
    """A REST session with a token of the module's USER."""
    return token_session(base, request.module.USER, request.module.PASSWORD)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, one per module."""
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()
