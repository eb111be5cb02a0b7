"""`python -m orchestrator`: run the command consumer with the configured runtime."""

from __future__ import annotations

import logging
import sys

from orchestrator.runtime import ProcessRuntime
from orchestrator.service import run
from orchestrator.settings import OrchestratorError, load


def main() -> int:
    """Entry point; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load()
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 2
    if settings.nnt_runtime != "process":
        print(
            "orchestrator: NNT_RUNTIME=docker is not available in this version; use process",
            file=sys.stderr,
        )
        return 2
    env = {"NNT_KAFKA_BOOTSTRAP": settings.nnt_kafka_bootstrap}
    run(settings, ProcessRuntime(settings.nnt_trainer_python, env))
    return 0


if __name__ == "__main__":
    sys.exit(main())
