"""Local podman for the docker runtime: run setup.sh, and the runtime's settings for tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SETUP = Path(__file__).with_name("setup.sh")


class PodmanError(RuntimeError):
    """The local container engine could not be set up; the text says what failed."""


def ensure(timeout: float = 600) -> str:
    """Run setup.sh (idempotent); return DOCKER_HOST and export it to this process."""
    try:
        done = subprocess.run(  # noqa: S603 - our own script
            ["bash", str(SETUP)], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PodmanError(f"{SETUP}: {exc}") from exc
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not lines[-1].startswith("DOCKER_HOST="):
        raise PodmanError(f"{SETUP} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    docker_host = lines[-1].split("=", 1)[1]
    os.environ["DOCKER_HOST"] = docker_host
    return docker_host


def runtime_env(image: str) -> dict[str, str]:
    """Orchestrator settings that run trainers in `image` (built by infra.images)."""
    return {"NNT_RUNTIME": "docker", "NNT_TRAINER_IMAGE": image}
