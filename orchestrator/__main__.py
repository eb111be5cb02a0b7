"""`python -m orchestrator`: run the command consumer with the configured runtime."""

from __future__ import annotations

import logging
import sys

from orchestrator.consumer import run
from orchestrator.runtime import ProcessRuntime, Runtime
from orchestrator.settings import OrchestratorError, load


def main() -> int:
    """Entry point; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load()
        env = {"NNT_KAFKA_BOOTSTRAP": settings.nnt_kafka_bootstrap}
        runtime: Runtime
        if settings.nnt_runtime == "docker":
            from orchestrator.containers import DockerRuntime

            runtime = DockerRuntime(settings, env)
        else:
            runtime = ProcessRuntime(settings, env)
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 2
    run(settings, runtime)
    return 0


if __name__ == "__main__":
    sys.exit(main())
