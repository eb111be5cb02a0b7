"""Timing shared by the benchmarks: the median of repeated calls after a warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_s(call: Callable[[], object], repeats: int) -> float:
    """Median wall time of `repeats` calls after one warm-up call (caches and plans ready)."""
    call()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)
