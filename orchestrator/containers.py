"""The `docker` runtime: one hardened container per simulation (Docker Engine or podman's API)."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

import docker
from docker.errors import APIError, DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.types import DeviceRequest

from orchestrator import gpus, identity
from orchestrator.rundirs import RunState
from orchestrator.runtime import Handle, no_gpu_message, run_key_of
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.resources import ResourceSample
from schemas.run import RunSpec

log = logging.getLogger(__name__)

LABEL_SIMULATION = "nntracker.simulation"
LABEL_OWNER = "nntracker.owner"
LABEL_HOST = "nntracker.host"
NOBODY = 65534


def container_name(simulation_id: uuid.UUID) -> str:
    """One container per simulation, named after it."""
    return f"nnt-{simulation_id}"


class DockerRuntime:
    """Trainer containers: non-root, no capabilities, read-only root, the run dir writable."""

    name = "docker"

    def __init__(self, settings: OrchestratorSettings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env or {}
        try:
            self.client = docker.from_env(timeout=120)
            self.info = self.client.info()
        except DockerException as exc:
            raise OrchestratorError(
                f"DOCKER_HOST={os.environ.get('DOCKER_HOST', '(default socket)')}: "
                f"no container engine answers ({exc}); start one (infra/podman/setup.sh)"
            ) from exc
        self._cpu: dict[str, tuple[int, int]] = {}

    def gpu_refusal(self) -> str | None:
        """Why this host cannot give a container a GPU, or None when it can."""
        runtimes = self.info.get("Runtimes") or {}
        if "nvidia" not in runtimes and not Path("/etc/cdi/nvidia.yaml").exists():
            return no_gpu_message("the container engine has no NVIDIA runtime or CDI spec")
        if not gpus.host_gpus():
            return no_gpu_message("nvidia-smi finds no NVIDIA GPU")
        return None

    def run_options(self, spec: RunSpec, run_dir: Path) -> dict[str, Any]:
        """Everything `containers.run` gets: the hardening in one place."""
        s = self.settings
        memory = spec.memory_bytes or s.nnt_run_memory_bytes  # the owner's per-run limit applied
        volumes = {
            p: {"bind": p, "mode": "ro"} for p in s.nnt_docker_host_mounts if Path(p).exists()
        }
        for path in dict.fromkeys(p for p in spec.datasets.model_dump().values() if p):
            volumes[path] = {"bind": path, "mode": "ro"}  # this run's datasets, no other
        volumes[str(run_dir)] = {"bind": str(run_dir), "mode": "rw"}  # the only writable volume
        options: dict[str, Any] = {
            "name": container_name(spec.simulation_id),
            "command": [s.nnt_container_python, "-m", "trainer", str(run_dir)],
            "detach": True,
            "user": f"{NOBODY}:{NOBODY}",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": True,
            "tmpfs": {"/home/nnt": "size=64m", "/tmp": "size=256m"},
            "environment": {
                **{k: v for k, v in self.env.items() if k != "NNT_COMMAND_SECRET"},
                "NNT_RUN_KEY": run_key_of(s, spec.simulation_id),
                "HOME": "/home/nnt",
                "TF_CPP_MIN_LOG_LEVEL": "2",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
            "volumes": volumes,
            "working_dir": str(run_dir),
            "network_mode": s.nnt_container_network,
            "mem_limit": memory,
            "memswap_limit": memory,
            "pids_limit": s.nnt_run_pids,
            "nano_cpus": int((spec.cpus or s.nnt_run_cpus) * 1e9),
            "labels": {
                LABEL_SIMULATION: str(spec.simulation_id),
                LABEL_OWNER: spec.owner,
                LABEL_HOST: s.nnt_hostname,
            },
        }
        if spec.config.gpu:
            options["device_requests"] = [DeviceRequest(count=-1, capabilities=[["gpu"]])]
        return options

    def start(self, spec: RunSpec, run_dir: Path) -> Handle:
        """Create and start the simulation's container (an old one of the same name goes)."""
        if spec.config.gpu and (reason := self.gpu_refusal()):
            raise OrchestratorError(reason)
        try:
            self.client.images.get(self.settings.nnt_trainer_image)
        except ImageNotFound as exc:
            raise OrchestratorError(
                f"NNT_TRAINER_IMAGE={self.settings.nnt_trainer_image}: image not found; "
                "build it: `make images` (python -m infra.images build trainer)"
            ) from exc
        self._remove_named(container_name(spec.simulation_id))
        _give_to_nobody(spec, run_dir)
        try:
            container = self.client.containers.run(
                self.settings.nnt_trainer_image, **self.run_options(spec, run_dir)
            )
        except APIError as exc:
            raise OrchestratorError(f"the container engine refused to start it: {exc}") from exc
        log.info("simulation %s: container %s", spec.simulation_id, container.short_id)
        memory = spec.memory_bytes or self.settings.nnt_run_memory_bytes
        return Handle(
            spec.simulation_id, run_dir, container=container.id, gpu=spec.config.gpu, memory=memory
        )

    def _get(self, handle: Handle) -> Container | None:
        try:
            return self.client.containers.get(
                handle.container or container_name(handle.simulation_id)
            )
        except NotFound:
            return None

    def _remove_named(self, name: str) -> None:
        with contextlib.suppress(NotFound):
            self.client.containers.get(name).remove(force=True)

    def pause(self, handle: Handle) -> None:
        """Freeze the container (cgroup freezer)."""
        if c := self._get(handle):
            c.pause()

    def unpause(self, handle: Handle) -> None:
        """Thaw it."""
        if c := self._get(handle):
            c.unpause()

    def stop(self, handle: Handle) -> None:
        """SIGTERM the trainer (thawed first): it checkpoints and exits on its own."""
        c = self._get(handle)
        if c is None:
            return
        c.reload()
        if c.status == "paused":
            c.unpause()
        if c.status in ("running", "paused"):
            c.kill(signal="SIGTERM")

    def kill(self, handle: Handle) -> None:
        """Remove the container whatever its state."""
        if c := self._get(handle):
            c.remove(force=True)
        self._cpu.pop(handle.container or "", None)

    def exit_code(self, handle: Handle) -> int | None:
        """None while it runs or is paused; its exit code once it exited (-1 when gone)."""
        c = self._get(handle)
        if c is None:
            return -1
        c.reload()
        if c.status in ("running", "paused", "created", "configured", "restarting"):
            return None
        state = c.attrs.get("State", {})
        code = int(state.get("ExitCode", -1))
        if state.get("OOMKilled"):
            code = 137
        c.remove(force=True)  # the exit code is read; nothing may be left behind
        return code

    def sample(self, handle: Handle) -> ResourceSample | None:
        """docker stats of the container; CPU % from the change since the previous sample."""
        c = self._get(handle)
        if c is None:
            return None
        try:
            stats = c.stats(stream=False)
        except (APIError, DockerException):
            return None
        cpu = stats.get("cpu_stats", {})
        total = int(cpu.get("cpu_usage", {}).get("total_usage", 0))
        now = time.monotonic_ns()
        before = self._cpu.get(c.id)
        self._cpu[c.id] = (total, now)
        percent = 0.0
        if before and now > before[1]:
            percent = max(0.0, (total - before[0]) / (now - before[1]) * 100)
        memory = stats.get("memory_stats", {})
        gpu_percent, gpu_memory = gpus.usage(None) if handle.gpu else (None, None)
        return ResourceSample(
            simulation_id=handle.simulation_id,
            cpu_percent=percent,
            memory_bytes=int(memory.get("usage", 0) or 0),
            memory_limit_bytes=int(memory.get("limit", 0) or 0)
            or handle.memory
            or self.settings.nnt_run_memory_bytes,
            gpu_percent=gpu_percent,
            gpu_memory_bytes=gpu_memory,
        )

    def adopt(self, simulation_id: uuid.UUID, run_dir: Path, state: RunState) -> Handle | None:
        """The container a previous orchestrator of this host started, if it still exists."""
        handle = Handle(simulation_id, run_dir, container=state.container)
        c = self._get(handle)
        if c is None or c.labels.get(LABEL_HOST) != self.settings.nnt_hostname:
            return None
        handle.container = c.id
        handle.gpu = bool(c.attrs.get("HostConfig", {}).get("DeviceRequests"))
        return handle

    def orphans(self, known: set[uuid.UUID]) -> list[str]:
        """Remove this host's trainer containers whose simulation it does not run."""
        removed = []
        label = f"{LABEL_HOST}={self.settings.nnt_hostname}"
        for c in self.client.containers.list(all=True, filters={"label": label}):
            sid = c.labels.get(LABEL_SIMULATION, "")
            if sid not in {str(k) for k in known}:
                c.remove(force=True)
                removed.append(sid)
                log.warning("simulation %s: orphan container %s removed", sid, c.short_id)
        return removed


def _give_to_nobody(spec: RunSpec, run_dir: Path) -> None:
    """The container runs as nobody: let it write its run directory and read its datasets
    (stored mode 640: as root, its group becomes nobody's; else, rootless, they open to all,
    still inside the private $NNT_HOME)."""
    for path in dict.fromkeys(p for p in spec.datasets.model_dump().values() if p):
        try:
            identity.share(Path(path), NOBODY)
        except PermissionError:
            os.chmod(path, 0o644)
    identity.give(run_dir, identity.Identity("nobody", NOBODY, NOBODY), open_if_denied=True)
