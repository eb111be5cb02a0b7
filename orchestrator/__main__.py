"""`python -m orchestrator`: run the command consumer with the configured runtime."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from orchestrator.consumer import run
from orchestrator.runtime import ProcessRuntime, Runtime
from orchestrator.settings import OrchestratorError, OrchestratorSettings, load


def trainer_env(settings: OrchestratorSettings, environ: Mapping[str, str]) -> dict[str, str]:
    """What every trainer process or container gets: the broker, the Kafka security settings
    (password included: an environment variable, never a file; the trainers' own SASL user
    when NNT_TRAINER_KAFKA_SASL_* are set) and the NNT_TRAINER_* limits."""
    limits = {
        k: v
        for k, v in environ.items()
        if k.startswith("NNT_TRAINER_") and not k.startswith("NNT_TRAINER_KAFKA_")
    }
    return {
        **limits,
        "NNT_KAFKA_BOOTSTRAP": settings.nnt_kafka_bootstrap,
        **settings.trainer_kafka(),
    }


def main() -> int:
    """Entry point; returns the exit code."""
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        settings = load()
        env = trainer_env(settings, os.environ)
        runtime: Runtime
        if settings.nnt_runtime == "docker":
            from orchestrator.containers import DockerRuntime

            runtime = DockerRuntime(settings, env)
        else:
            runtime = ProcessRuntime(settings, env)
        run(settings, runtime)
    except OrchestratorError as exc:
        print(f"orchestrator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
