"""Start the real Kafka and PostgreSQL for tests with the product's own provisioning code."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from infra import kafka, postgres, process, timeseries
from infra.settings import StackSettings


def free_port(pair: bool = False) -> int:
    """A free loopback port (and the next one too when `pair`, for Kafka's controller)."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port < 65000 and not (pair and process.port_in_use(port + 1)):
            return port
    raise RuntimeError("no free port pair found")


@dataclass
class Running:
    """A started service and how to stop it."""

    spec: process.ServiceSpec
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        """Stop it and everything it started."""
        process.stop(self.proc, self.spec.stop_timeout, self.spec.stop_signal)


def start(spec: process.ServiceSpec, log_file: Path) -> Running:
    """Spawn with output to a file and wait until ready."""
    out = log_file.open("ab")
    proc = process.spawn(spec, stdout=out.fileno())
    out.close()
    try:
        process.wait_ready(spec, proc)
    except Exception:
        process.stop(proc)
        raise RuntimeError(
            f"{spec.name} did not start; its log: {log_file}\n"
            + log_file.read_text(errors="replace")[-3000:]
        ) from None
    return Running(spec, proc)


def start_kafka(home: Path) -> tuple[str, Running]:
    """A fresh single-node broker with the product's topics; returns its bootstrap."""
    port = free_port(pair=True)
    spec = kafka.prepare(home, port, jar_cache=StackSettings().nnt_home)
    running = start(spec, home / "kafka.log")
    bootstrap = f"127.0.0.1:{port}"
    kafka.ensure_topics(bootstrap)
    return bootstrap, running


def start_postgres(home: Path) -> tuple[str, Running]:
    """A fresh embedded PostgreSQL with the time-series schema; returns its URL."""
    port = free_port()
    spec = postgres.prepare(home, port)
    running = start(spec, home / "postgres.log")
    url = postgres.url(home, port)
    timeseries.apply(url)
    return url, running
