"""Start the real Kafka and PostgreSQL for tests with the product's own provisioning code."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from infra import kafka, kafkaacl, postgres, process, timescale, timeseries
from infra.settings import StackSettings, load_timescale
from schemas.kafkaauth import KafkaSecurity

# The test broker's SASL listener (SASL_PLAINTEXT, mechanism PLAIN) authorizes as production
# does. SASL_USER is a super user (tests that only need a login); every principal of
# infra/kafkaacl.py logs in with its own password and may do only what its ACLs grant
# (nnt-admin is a super user there too); NO_ACL_USER logs in and has no ACL at all.
SASL_USER, SASL_PASSWORD = "nnt-test", "nnt-test-secret"
NO_ACL_USER = "nnt-stranger"
PASSWORDS: dict[str, str] = {
    SASL_USER: SASL_PASSWORD,
    **{p.name: f"{p.name}-secret" for p in kafkaacl.PRINCIPALS},
    NO_ACL_USER: f"{NO_ACL_USER}-secret",
}
SUPER_USERS = (SASL_USER, kafkaacl.ADMIN)


def free_port(pair: bool = False) -> int:
    """A free loopback port (and the next one too when `pair`, for Kafka's controller).

    Picked below the kernel's ephemeral range: a port the kernel hands out (bind to 0) is
    soon handed out again as the source port of some client's connection, which then holds
    it while a service starts, or while a fault test has that service stopped to restart it.
    """
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(200):
        port = rng.randint(20000, low - 2)
        if all(_bindable(p) for p in ((port, port + 1) if pair else (port,))):
            return port
    raise RuntimeError("no free port (pair) found below the ephemeral range")


def _ephemeral_low() -> int:
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(low, 20100)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return not process.port_in_use(port)


@dataclass
class Running:
    """A started service, how to stop it, and how to start it again on the same port and data."""

    spec: process.ServiceSpec
    proc: subprocess.Popen[bytes]
    log_file: Path | None = None

    def stop(self) -> None:
        """Stop it and everything it started."""
        process.stop(self.proc, self.spec.stop_timeout, self.spec.stop_signal)

    def start_again(self) -> None:
        """Start it again after a stop (same command, port and data directory); wait until ready."""
        assert self.log_file is not None and self.proc.poll() is not None
        self.proc = _spawn_ready(self.spec, self.log_file)


def _spawn_ready(spec: process.ServiceSpec, log_file: Path) -> subprocess.Popen[bytes]:
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
    return proc


def start(spec: process.ServiceSpec, log_file: Path) -> Running:
    """Spawn with output to a file and wait until ready."""
    return Running(spec, _spawn_ready(spec, log_file), log_file)


def start_kafka(home: Path, sasl_port: int | None = None) -> tuple[str, Running]:
    """A fresh single-node broker with the product's topics; returns its PLAINTEXT bootstrap.

    With `sasl_port`, it also listens there for the PLAIN logins of PASSWORDS (SASL_PLAINTEXT)
    and authorizes them with ACLs (none until a test applies infra/kafkaacl.py's); clients of
    the PLAINTEXT listener are super users, as if there were no authorizer.
    """
    port = free_port(pair=True)
    while sasl_port in (port, port + 1):
        port = free_port(pair=True)
    sasl = kafka.SaslListener(sasl_port, PASSWORDS, SUPER_USERS) if sasl_port else None
    spec = kafka.prepare(home, port, jar_cache=StackSettings().nnt_home, sasl=sasl)
    running = start(spec, home / "kafka.log")
    bootstrap = f"127.0.0.1:{port}"
    kafka.ensure_topics(bootstrap, KafkaSecurity())
    return bootstrap, running


def timescale_required() -> bool:
    """The tests must run on TimescaleDB: CI=true (unless NNT_TIMESCALEDB=off, the native
    job) or NNT_TIMESCALEDB=on (`make test`)."""
    mode = load_timescale().nnt_timescaledb
    return mode == "on" or (mode != "off" and os.environ.get("CI", "").lower() == "true")


def provision_timescale() -> timescale.Availability:
    """TimescaleDB for the embedded server, built once per machine (then from the cache).

    Raises when it is required and cannot be had; otherwise a local run without a compiler
    or tarball says so on the terminal and goes on with native partitioning.
    """
    found = timescale.provision(say=_tell, required=timescale_required())
    if not found.ok:
        _tell(f"TimescaleDB not used, the tests run on native partitioning: {found.reason}")
    return found


def _tell(line: str) -> None:
    """A line the user sees even while pytest captures output (a build takes minutes)."""
    print(f"[tests] {line}", file=sys.__stderr__, flush=True)


def start_postgres(home: Path) -> tuple[str, Running]:
    """A fresh embedded PostgreSQL with the time-series schema; returns its URL.

    The server preloads TimescaleDB when it could be provisioned, and the schema then must
    use it (an error otherwise, never a silent fallback).
    """
    found = provision_timescale()
    port = free_port()
    spec = postgres.prepare(home, port, timescaledb=found.ok)
    running = start(spec, home / "postgres.log")
    url = postgres.url(home, port)
    timeseries.apply(url, timescaledb=True if found.ok else None)
    return url, running
