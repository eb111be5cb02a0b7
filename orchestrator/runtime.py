"""Runtimes behind one interface; `process` runs each trainer as a limited subprocess."""

from __future__ import annotations

import collections
import contextlib
import functools
import logging
import math
import os
import resource
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import psutil

from orchestrator import gpus, identity
from orchestrator.launch import EXIT_FILE
from orchestrator.rundirs import RunState
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas import auth
from schemas.resources import ResourceSample
from schemas.run import RunSpec

log = logging.getLogger(__name__)


@dataclass
class Handle:
    """A started simulation: its id and the process or container behind it."""

    simulation_id: uuid.UUID
    run_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None
    container: str | None = None
    gpu: bool = False
    memory: int | None = None  # this run's memory limit (None: the host's NNT_RUN_MEMORY_BYTES)


class Runtime(Protocol):
    """What the orchestrator needs of a runtime."""

    name: str

    def start(self, spec: RunSpec, run_dir: Path) -> Handle: ...
    def pause(self, handle: Handle) -> None: ...
    def unpause(self, handle: Handle) -> None: ...
    def stop(self, handle: Handle) -> None: ...
    def kill(self, handle: Handle) -> None: ...
    def exit_code(self, handle: Handle) -> int | None: ...
    def sample(self, handle: Handle) -> ResourceSample | None: ...
    def adopt(self, simulation_id: uuid.UUID, run_dir: Path, state: RunState) -> Handle | None: ...
    def orphans(self, known: set[uuid.UUID]) -> list[str]: ...


def run_key_of(settings: OrchestratorSettings, simulation_id: uuid.UUID) -> str:
    """The key this run's trainer signs its events with (schemas/auth.py)."""
    return auth.run_key(settings.command_secret(), simulation_id)


def no_gpu_message(detail: str) -> str:
    """The status message of a run that asks for a GPU this host lacks."""
    return f"no GPU on this host: {detail}; run it without `gpu` or on a GPU host"


# What the orchestrator holds and a trainer (user-supplied model code) must not: the secret
# every key derives from, the database with every user's data, the web's signing key.
NOT_FOR_TRAINERS = ("NNT_COMMAND_SECRET", "DATABASE_URL", "NNT_SECRET_KEY")


class ProcessRuntime:
    """One trainer subprocess per simulation in its own session, with memory and CPU limits."""

    name = "process"

    def __init__(self, settings: OrchestratorSettings, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.env = env or {}
        self.memory = settings.nnt_run_memory_bytes
        self.pinned: dict[int, set[int]] = {}  # trainer pid -> its cores
        # Root never runs a trainer when it can help it (orchestrator/identity.py).
        self.identity = identity.choose(settings, _project_root(), {**os.environ, **self.env})

    def cores(self, cpus: float | None = None) -> set[int]:
        """ceil(cpus) (default NNT_RUN_CPUS) of this process's cores, those the live runs use
        least."""
        allowed = sorted(os.sched_getaffinity(0))
        n = min(len(allowed), max(1, math.ceil(cpus or self.settings.nnt_run_cpus)))
        self.pinned = {pid: c for pid, c in self.pinned.items() if psutil.pid_exists(pid)}
        load = collections.Counter(c for cores in self.pinned.values() for c in cores)
        return set(sorted(allowed, key=lambda c: (load[c], c))[:n])

    def start(self, spec: RunSpec, run_dir: Path) -> Handle:
        """Spawn `python -m orchestrator.launch RUN_DIR`; output goes to RUN_DIR/trainer.log."""
        if spec.config.gpu and not gpus.host_gpus():
            raise OrchestratorError(no_gpu_message("nvidia-smi finds no NVIDIA GPU"))
        (run_dir / EXIT_FILE).unlink(missing_ok=True)
        env = {**os.environ, **self.env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        for secret in NOT_FOR_TRAINERS:  # a run gets its own key, never these
            env.pop(secret, None)
        env["NNT_RUN_KEY"] = run_key_of(self.settings, spec.simulation_id)
        if not spec.config.gpu:
            env["CUDA_VISIBLE_DEVICES"] = ""
        # The owner's per-run limits lowered these when the run started (rules.run_resources).
        memory = spec.memory_bytes or self.memory
        cores = self.cores(spec.cpus)
        argv = [self.settings.nnt_trainer_python, "-m", "orchestrator.launch", str(run_dir)]
        cwd, user, group, groups = _project_root(), None, None, None  # as this process
        handover = identity.Handover()
        if (who := self.identity) is not None:
            # The child enters its run directory while still root, then becomes `who`.
            handover = identity.hand_over(who, spec, run_dir)
            env = identity.python_env({**env, **handover.env}, _project_root())
            argv.append("--here")
            cwd, user, group, groups = str(run_dir), who.uid, who.gid, list[int]()
        try:
            with (run_dir / "trainer.log").open("ab") as log_file:
                proc = subprocess.Popen(  # noqa: S603 - fixed argv
                    argv,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                    cwd=cwd,
                    user=user,
                    group=group,
                    extra_groups=groups,
                    pass_fds=handover.fds,
                    preexec_fn=functools.partial(self._limits, cores, memory),  # noqa: PLW1509
                )
        finally:
            handover.close()
        self.pinned[proc.pid] = cores
        log.info("simulation %s: trainer pid %d on cores %s", spec.simulation_id, proc.pid,
                 sorted(cores))  # fmt: skip
        return Handle(
            spec.simulation_id, run_dir, proc, proc.pid, gpu=spec.config.gpu, memory=memory
        )

    def _limits(self, cores: set[int], memory: int) -> None:
        # Runs in the child between fork and exec: plain system calls only.
        # RLIMIT_AS would break TensorFlow, which reserves far more address space than it
        # uses; RLIMIT_DATA bounds heap and private mappings. The RSS watchdog does the rest.
        data = memory * 2
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_DATA, (data, data))
        # TensorFlow sizes its thread pools from the affinity mask, so this also keeps its
        # threads from competing for the other runs' cores.
        with contextlib.suppress(OSError):
            os.sched_setaffinity(0, cores)
        with contextlib.suppress(OSError):
            os.nice(5)

    def pause(self, handle: Handle) -> None:
        """Freeze every process of the run."""
        self._signal(handle, signal.SIGSTOP)

    def unpause(self, handle: Handle) -> None:
        """Thaw a frozen run."""
        self._signal(handle, signal.SIGCONT)

    def stop(self, handle: Handle) -> None:
        """Ask the trainer to checkpoint and exit (it finishes the batch in hand)."""
        self._signal(handle, signal.SIGTERM)
        self._signal(handle, signal.SIGCONT)

    def kill(self, handle: Handle) -> None:
        """Kill the run's whole process group and reap it."""
        self._signal(handle, signal.SIGCONT)
        self._signal(handle, signal.SIGKILL)
        if handle.proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                handle.proc.wait(10)
        elif handle.pid is not None:
            with contextlib.suppress(psutil.Error):
                psutil.Process(handle.pid).wait(10)

    def exit_code(self, handle: Handle) -> int | None:
        """None while running; the exit code once it has ended (-1 when unknown)."""
        if handle.proc is not None:
            return handle.proc.poll()
        if handle.pid is not None and _is_trainer(handle.pid, handle.run_dir):
            return None
        try:
            return int((handle.run_dir / EXIT_FILE).read_text())
        except (OSError, ValueError):
            return -1

    def sample(self, handle: Handle) -> ResourceSample | None:
        """CPU and memory of the trainer and its children, GPU where present."""
        if handle.pid is None:
            return None
        try:
            procs = [p for p in _tree(handle.pid) if p.status() != psutil.STATUS_ZOMBIE]
            cpu = sum(p.cpu_percent(None) for p in procs)
            rss = sum(p.memory_info().rss for p in procs)
        except psutil.Error:
            return None
        if not rss:  # exited between the check and the read (a zombie's memory reads 0)
            return None
        percent, gpu_memory = gpus.usage({p.pid for p in procs}) if handle.gpu else (None, None)
        return ResourceSample(
            simulation_id=handle.simulation_id,
            cpu_percent=cpu,
            memory_bytes=rss,
            memory_limit_bytes=handle.memory or self.memory,
            gpu_percent=percent,
            gpu_memory_bytes=gpu_memory,
        )

    def adopt(self, simulation_id: uuid.UUID, run_dir: Path, state: RunState) -> Handle | None:
        """The trainer a previous orchestrator started, if its pid is still that trainer."""
        if state.pid is None or not _is_trainer(state.pid, run_dir):
            return None
        return Handle(simulation_id, run_dir, None, state.pid)

    def orphans(self, known: set[uuid.UUID]) -> list[str]:
        """Processes leave no orphans: each lives in its run directory's session."""
        return []

    def _signal(self, handle: Handle, sig: int) -> None:
        if handle.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, sig)


_TREES: dict[int, dict[int, psutil.Process]] = {}


def _tree(pid: int) -> list[psutil.Process]:
    """The process and its children, reusing Process objects so cpu_percent has a baseline."""
    known = _TREES.setdefault(pid, {})
    root = known.get(pid) or psutil.Process(pid)
    current = [root, *root.children(recursive=True)]
    _TREES[pid] = {p.pid: known.get(p.pid, p) for p in current}
    return list(_TREES[pid].values())


def _is_trainer(pid: int, run_dir: Path) -> bool:
    """True when `pid` is alive and is the launcher of this run dir (guards pid reuse)."""
    try:
        proc = psutil.Process(pid)
        cmdline = proc.cmdline()
        zombie = proc.status() == psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
    return not zombie and "orchestrator.launch" in cmdline and str(run_dir) in cmdline


def _project_root() -> str:
    """Where `trainer` is importable from when the project is not installed."""
    return str(Path(__file__).resolve().parent.parent)
