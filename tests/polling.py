"""Waiting in tests: poll a condition until it holds, and fail naming what never happened."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def until(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.3,
    sleep: Callable[[float], object] = time.sleep,
    context: Callable[[], str] = lambda: "",
) -> T:
    """`check()`'s first truthy value within `timeout` seconds. `sleep` waits between polls
    (a browser page keeps listening with its own), `context` adds what explains a timeout
    (a log's tail; a screenshot taken)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        sleep(interval)
    raise AssertionError(
        f"timed out after {timeout:.0f} s waiting for {what}\n{context()}".rstrip()
    )
