"""`nntracker up`: the whole local stack in the foreground, each part healthy before the next.

Order: Kafka, PostgreSQL (embedded unless DATABASE_URL; with TimescaleDB when it can be
built), migrations, the Faust worker, the orchestrator, daphne. A part that dies is restarted
with back-off; Ctrl-C or SIGTERM stops every child in reverse order and leaves no process or
port behind.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infra import kafka, postgres, process, timescale, timeseries
from infra.process import ServiceSpec
from infra.settings import InfraError, StackSettings
from schemas import topics
from schemas.kafkaauth import KafkaSecurity

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent
COLOURS = {"kafka": 33, "postgres": 34, "stream": 35, "orchestrator": 36, "web": 32, "stack": 1}


def paint(text: str, code: int) -> str:
    """ANSI colour on a terminal, plain text in a pipe or a log file."""
    return f"\033[{code}m{text}\033[0m" if sys.stdout.isatty() else text


def say(name: str, line: str) -> None:
    """Print one log line with a coloured, aligned prefix."""
    print(f"{paint(f'{name:<12}|', COLOURS.get(name, 37))} {line}", flush=True)


@dataclass
class Child:
    """A supervised component and its restart bookkeeping."""

    spec: ServiceSpec
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    started_at: float = 0.0
    backoff: float = 1.0
    next_start: float = 0.0
    pumps: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        """Spawn and stream its output with a prefix."""
        self.proc = process.spawn(self.spec)
        self.started_at = time.monotonic()
        pump = threading.Thread(target=_pump, args=(self.spec.name, self.proc), daemon=True)
        pump.start()
        self.pumps = [pump]


def _pump(name: str, proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    for raw in iter(proc.stdout.readline, b""):
        say(name, raw.decode(errors="replace").rstrip())


def python_service(
    name: str,
    module: str,
    args: list[str],
    env: dict[str, str],
    ready: Callable[[], bool],
    timeout: float = 120,
) -> ServiceSpec:
    """A component that is one of our Python packages run with `python -m`."""
    return ServiceSpec(
        name=name,
        argv=[sys.executable, "-m", module, *args],
        env=env,
        cwd=str(ROOT),
        ready=ready,
        ready_timeout=timeout,
        stop_timeout=30,
    )


def group_has_members(bootstrap: str, group: str, security: KafkaSecurity) -> bool:
    """True once a consumer group has at least one live member (a real health signal)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(
        {"bootstrap.servers": bootstrap, "log_level": 0, **security.confluent_config()}
    )
    desc = admin.describe_consumer_groups([group], request_timeout=5)[group].result()
    return len(desc.members) > 0


def http_ok(url: str) -> bool:
    """True when the URL answers with a non-5xx status."""
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback only
            return resp.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500


class Stack:
    """Starts, watches and stops the components of the local stack."""

    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.children: list[Child] = []
        self.stopping = threading.Event()
        self.database_url = settings.database_url or ""

    def env(self) -> dict[str, str]:
        """Environment every component gets."""
        s = self.settings
        return {
            "NNT_KAFKA_BOOTSTRAP": s.nnt_kafka_bootstrap,
            "DATABASE_URL": self.database_url,
            "NNT_HOME": str(s.nnt_home),
            "NNT_RUNTIME": s.nnt_runtime,
            "NNT_WEB_PORT": str(s.nnt_web_port),
            "PYTHONUNBUFFERED": "1",
        }

    def infrastructure(self) -> list[Callable[[], ServiceSpec]]:
        """Kafka and PostgreSQL, when they are local; built lazily."""
        s = self.settings
        out: list[Callable[[], ServiceSpec]] = []
        if _is_local(s.nnt_kafka_bootstrap):
            if s.nnt_kafka_security_protocol != "PLAINTEXT":
                raise InfraError(
                    f"NNT_KAFKA_SECURITY_PROTOCOL={s.nnt_kafka_security_protocol}, but the "
                    "broker `nntracker up` starts on loopback speaks PLAINTEXT only: unset it, "
                    "or point NNT_KAFKA_BOOTSTRAP at a broker that takes credentials"
                )
            out.append(lambda: kafka.prepare(s.nnt_home, s.kafka_port))
        if not s.database_url:
            out.append(self._postgres)
        return out

    def applications(self) -> list[Callable[[], ServiceSpec]]:
        """Our own components in start order."""
        s = self.settings
        boot = s.nnt_kafka_bootstrap
        url = f"http://127.0.0.1:{s.nnt_web_port}/"
        web = ServiceSpec(
            name="web",
            argv=[sys.executable, "-m", "web", "serve"],
            cwd=str(ROOT),
            ready=lambda: http_ok(url),
            ready_timeout=60,
            ports=(s.nnt_web_port,),
        )
        return [
            lambda: python_service(
                "stream",
                "stream_processors",
                [],
                self.env(),
                lambda: group_has_members(boot, topics.STREAM_GROUP, s),
            ),
            lambda: python_service(
                "orchestrator",
                "orchestrator",
                [],
                self.env(),
                lambda: group_has_members(boot, topics.ORCHESTRATOR_GROUP, s),
            ),
            lambda: _with_env(web, self.env()),
        ]

    def _postgres(self) -> ServiceSpec:
        found = self._timescale()
        spec = postgres.prepare(
            self.settings.nnt_home, self.settings.nnt_pg_port, timescaledb=found.ok
        )
        self.database_url = postgres.url(self.settings.nnt_home, self.settings.nnt_pg_port)
        return spec

    def _timescale(self) -> timescale.Availability:
        """Build (once per machine) and install TimescaleDB for the embedded server, or say in
        one line why the time-series tables will be natively partitioned and how to change it."""
        found = timescale.provision(self.settings, say=lambda line: say("stack", line))
        if found.ok:
            say("stack", f"TimescaleDB {found.version} preloaded by the embedded PostgreSQL")
        else:
            say("stack", f"TimescaleDB not used, native partitioning instead: {found.reason}")
        return found

    def up(self, on_ready: Callable[[], None] | None = None) -> int:
        """Start everything, supervise until asked to stop, then stop everything."""
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.stopping.set())
        try:
            for build in self.infrastructure():
                self._start_one(build())
            created = kafka.ensure_topics(self.settings.nnt_kafka_bootstrap, self.settings)
            say("stack", f"Kafka topics ready ({len(created)} created)")
            self._migrate()
            for build in self.applications():
                if self.stopping.is_set():
                    return 130
                self._start_one(build())
            say(
                "stack",
                paint(f"NN Tracker is up: http://127.0.0.1:{self.settings.nnt_web_port}/", 1)
                + "  (Ctrl-C stops everything)",
            )
            if on_ready:
                threading.Thread(target=on_ready, daemon=True).start()
            self._supervise()
            return 0
        except InfraError as exc:
            say("stack", f"{paint('error:', 31)} {exc}")
            return 1
        finally:
            self.down()

    def _start_one(self, spec: ServiceSpec) -> None:
        process.check_ports_free(spec)
        say("stack", f"starting {spec.name} ...")
        child = Child(spec)
        child.start()
        self.children.append(child)
        t0 = time.monotonic()
        assert child.proc is not None
        process.wait_ready(spec, child.proc, self.stopping)
        say("stack", f"{spec.name} is healthy ({time.monotonic() - t0:.1f} s)")

    def _migrate(self) -> None:
        say("stack", "applying database migrations ...")
        env = {**self.env()}
        result = subprocess.run(
            [sys.executable, "-m", "web", "manage", "migrate", "--noinput"],
            cwd=ROOT,
            env={**_os_env(), **env},
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise InfraError(f"migrations failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        mode = timeseries.apply_schema(self.database_url, settings=self.settings)
        say("stack", f"database ready (time-series tables: {mode.describe()})")

    def _supervise(self) -> None:
        while not self.stopping.wait(0.5):
            for child in self.children:
                self._check(child)

    def _check(self, child: Child) -> None:
        now = time.monotonic()
        if child.proc is None:
            if now >= child.next_start:
                child.start()
            return
        code = child.proc.poll()
        if code is None:
            if now - child.started_at > 60:
                child.backoff = 1.0
            return
        child.restarts += 1
        say(
            "stack",
            f"{paint(f'{child.spec.name} exited with code {code}', 31)}; "
            f"restart #{child.restarts} in {child.backoff:.0f} s",
        )
        child.proc = None
        child.next_start = now + child.backoff
        child.backoff = min(child.backoff * 2, 30.0)

    def down(self) -> None:
        """Stop every child in reverse order; nothing is left running."""
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                say("stack", f"stopping {child.spec.name} ...")
                process.stop(child.proc, child.spec.stop_timeout, child.spec.stop_signal)
        self.children.clear()
        say("stack", "stopped")


def _with_env(spec: ServiceSpec, env: dict[str, str]) -> ServiceSpec:
    spec.env = env
    return spec


def _os_env() -> dict[str, str]:
    import os

    return dict(os.environ)


def _is_local(bootstrap: str) -> bool:
    host = bootstrap.rpartition(":")[0]
    return host in ("127.0.0.1", "localhost", "::1", "[::1]")
