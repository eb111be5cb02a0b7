"""Child processes of the local stack: start, wait until healthy, stop leaving nothing behind."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from infra.settings import InfraError

log = logging.getLogger(__name__)


@dataclass
class ServiceSpec:
    """How to run one component: command, environment, readiness probe, ports it binds."""

    name: str
    argv: list[str]
    ready: Callable[[], bool]
    ready_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    user: str | None = None
    ports: tuple[int, ...] = ()
    stop_timeout: float = 15.0
    stop_signal: int = signal.SIGTERM


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """True when something already listens on host:port."""
    with socket.socket() as sock:
        sock.settimeout(0.3)
        return sock.connect_ex((host, port)) == 0


def check_ports_free(spec: ServiceSpec) -> None:
    """Fail with a clear message when a port the service needs is taken."""
    for port in spec.ports:
        if port_in_use(port):
            raise InfraError(
                f"{spec.name}: port {port} on 127.0.0.1 is already in use. Stop whatever uses it "
                f"(`ss -ltnp 'sport = :{port}'` shows it) or choose another port in the environment."
            )


def spawn(spec: ServiceSpec, stdout: int | None = subprocess.PIPE) -> subprocess.Popen[bytes]:
    """Start the service in its own session so that stopping it takes its children too."""
    env = {**os.environ, **spec.env}
    return subprocess.Popen(  # noqa: S603 - argv is built by us, never by a user
        spec.argv,
        env=env,
        cwd=spec.cwd,
        user=spec.user,
        start_new_session=True,
        stdout=stdout,
        stderr=subprocess.STDOUT if stdout is not None else None,
    )


def wait_ready(
    spec: ServiceSpec, proc: subprocess.Popen[bytes], cancel: threading.Event | None = None
) -> None:
    """Poll the readiness probe until it answers or the process dies or time runs out."""
    deadline = time.monotonic() + spec.ready_timeout
    while time.monotonic() < deadline:
        if cancel is not None and cancel.is_set():
            raise InfraError(f"interrupted while waiting for {spec.name}")
        if proc.poll() is not None:
            raise InfraError(f"{spec.name} exited with code {proc.returncode} before it was ready")
        try:
            if spec.ready():
                return
        except Exception as exc:  # noqa: BLE001 - a probe that fails just means "not yet"
            log.debug("%s not ready: %s", spec.name, exc)
        time.sleep(0.3)
    raise InfraError(f"{spec.name} was not ready after {spec.ready_timeout:.0f} s")


def stop(
    proc: subprocess.Popen[bytes], timeout: float = 15.0, sig: int = signal.SIGTERM
) -> int | None:
    """Signal the process group, then SIGKILL what is left after the timeout."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.returncode
    _kill_group(proc.pid, sig)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc.pid, signal.SIGKILL)
        return proc.wait(5)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
