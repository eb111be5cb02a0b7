"""One-shot provisioning of a deployment, run from the web image before any component starts.

The same three steps as `nntracker up`, in the same order (infra/stack.py): Django migrations,
the time-series tables (TimescaleDB hypertables + compression when the extension exists), and
the product's Kafka topics with their partition counts. Every step is idempotent, so it runs
on every `docker compose up` and after every upgrade.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from infra import kafka, timeseries
from infra.settings import InfraError, load

T = TypeVar("T")
ATTEMPTS = 10


def _retry(step: str, action: Callable[[], T]) -> T:
    """Call `action` until it succeeds; the broker may still be electing leaders."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return action()
        except Exception as exc:  # noqa: BLE001 - retried, then raised with its reason
            if attempt == ATTEMPTS:
                raise
            print(f"provision: {step} failed ({exc}); retry {attempt}/{ATTEMPTS - 1}", flush=True)
            time.sleep(min(2.0 * attempt, 10.0))
    raise AssertionError("unreachable")


def migrate() -> None:
    """`python -m web manage migrate` in a child process, as `nntracker up` runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "web", "manage", "migrate", "--noinput"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        raise InfraError(f"migrations failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")


def main() -> int:
    """Migrate, create the time-series tables and the topics; 0 when all are in place."""
    try:
        settings = load()
        if not settings.database_url:
            raise InfraError("DATABASE_URL is required (postgresql://user:pw@host:5432/nntracker)")
    except InfraError as exc:
        print(f"provision: configuration error: {exc}", file=sys.stderr)
        return 2
    database_url = settings.database_url
    _retry("migrations", migrate)
    print("provision: migrations applied", flush=True)
    mode = _retry("time-series tables", lambda: timeseries.apply(database_url))
    print(f"provision: time-series tables ready ({mode} partitioning)", flush=True)
    created = _retry("topics", lambda: kafka.ensure_topics(settings.nnt_kafka_bootstrap, settings))
    print(f"provision: Kafka topics ready ({len(created)} created)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
