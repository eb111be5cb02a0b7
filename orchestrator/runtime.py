"""Runtimes behind one interface: `process` (a subprocess per simulation) for now."""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass
class Handle:
    """A started simulation: its id and the OS process (or container) behind it."""

    simulation_id: uuid.UUID
    run_dir: Path
    proc: subprocess.Popen[bytes] | None = None
    pid: int | None = None


class Runtime(Protocol):
    """What the orchestrator needs of a runtime."""

    def start(self, simulation_id: uuid.UUID, run_dir: Path) -> Handle: ...
    def pause(self, handle: Handle) -> None: ...
    def unpause(self, handle: Handle) -> None: ...
    def stop(self, handle: Handle) -> None: ...
    def remove(self, handle: Handle) -> None: ...
    def exit_code(self, handle: Handle) -> int | None: ...


class ProcessRuntime:
    """One `python -m trainer RUN_DIR` subprocess per simulation, in its own session."""

    def __init__(self, python: str, env: dict[str, str] | None = None) -> None:
        self.python = python
        self.env = env or {}

    def start(self, simulation_id: uuid.UUID, run_dir: Path) -> Handle:
        """Spawn the trainer; its output goes to RUN_DIR/trainer.log."""
        log_file = (run_dir / "trainer.log").open("ab")
        env = {**os.environ, **self.env, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(  # noqa: S603 - fixed argv
            [self.python, "-m", "trainer", str(run_dir)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=_project_root(),
        )
        log_file.close()
        (run_dir / "pid").write_text(str(proc.pid))
        log.info("simulation %s: trainer pid %d", simulation_id, proc.pid)
        return Handle(simulation_id, run_dir, proc, proc.pid)

    def pause(self, handle: Handle) -> None:
        """Freeze every process of the run."""
        self._signal(handle, signal.SIGSTOP)

    def unpause(self, handle: Handle) -> None:
        """Thaw a frozen run."""
        self._signal(handle, signal.SIGCONT)

    def stop(self, handle: Handle) -> None:
        """Ask the trainer to checkpoint and exit (it finishes the batch in hand)."""
        self._signal(handle, signal.SIGCONT)
        self._signal(handle, signal.SIGTERM)

    def remove(self, handle: Handle) -> None:
        """Kill whatever is left and delete the run directory."""
        self._signal(handle, signal.SIGKILL)
        if handle.proc is not None:
            try:
                handle.proc.wait(10)
            except subprocess.TimeoutExpired:
                log.warning("simulation %s: process did not die", handle.simulation_id)
        shutil.rmtree(handle.run_dir, ignore_errors=True)

    def exit_code(self, handle: Handle) -> int | None:
        """None while running; the exit code once it has ended."""
        if handle.proc is not None:
            return handle.proc.poll()
        return None if handle.pid and _alive(handle.pid) else -1

    def _signal(self, handle: Handle, sig: int) -> None:
        if handle.pid is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(handle.pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _project_root() -> str:
    """Where `trainer` is importable from when the project is not installed."""
    return str(Path(__file__).resolve().parent.parent)
