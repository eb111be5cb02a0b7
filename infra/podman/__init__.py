"""Local podman for the docker runtime: run setup.sh, and the mounts the local image needs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SETUP = Path(__file__).with_name("setup.sh")
PROJECT = Path(__file__).resolve().parents[2]


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


def host_mounts() -> list[str]:
    """Host paths the busybox image bind-mounts read-only to run this checkout's trainer."""
    paths = ["/usr", "/lib", "/lib64", "/etc", sys.base_prefix, sys.prefix, str(PROJECT)]
    return [p for p in dict.fromkeys(paths) if Path(p).exists()]


def runtime_env() -> dict[str, str]:
    """Orchestrator settings for the local image (NNT_RUNTIME=docker)."""
    return {
        "NNT_RUNTIME": "docker",
        "NNT_TRAINER_IMAGE": os.environ.get("NNT_TRAINER_IMAGE", "nntracker-trainer:local"),
        "NNT_CONTAINER_PYTHON": sys.executable,
        "NNT_DOCKER_HOST_MOUNTS": ",".join(host_mounts()),
    }
