"""Driving one compose project under podman: podman-compose with the project's own env file,
its containers, the health checks podman's systemd timers would run, and what is left of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests import polling

ROOT = Path(__file__).resolve().parents[3]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PODMAN_COMPOSE = Path(sys.executable).with_name("podman-compose")
# What a systemd timer would do between checks; a container not yet healthy is checked every
# STARTING_PERIOD_S so the test does not wait out a whole interval at each step.
STARTING_PERIOD_S = 2.0


class Timings:
    """Wall-clock seconds of each phase, printed as they happen and at the end."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.phases: list[tuple[str, float]] = []
        self._last = self.start

    def mark(self, phase: str) -> None:
        """End a phase: its time since the last mark."""
        now = time.monotonic()
        self.phases.append((phase, now - self._last))
        print(f"[compose] {phase}: {now - self._last:.1f} s", flush=True)
        self._last = now

    def report(self) -> str:
        """Every phase and the total, one line each."""
        rows = [f"  {name:<44} {secs:7.1f} s" for name, secs in self.phases]
        return "\n".join([*rows, f"  {'total':<44} {time.monotonic() - self.start:7.1f} s"])


def podman(*args: str, timeout: float = 120, check: bool = True) -> str:
    """A podman command's stdout; fails with its stderr."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
    if check:
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr.strip()[-2000:]}"
    return done.stdout


@dataclass
class Stack:
    """One compose project: its env file, its containers, and podman-compose to drive it."""

    project: str
    env_file: Path
    hostname: str
    web_port: int
    log: list[str] = field(default_factory=list)

    def compose(self, *args: str, timeout: float = 900) -> str:
        """podman-compose on the repository's compose file, this project, this env file only.

        The environment is cleaned of NNT_* and the like: compose lets the caller's environment
        override the env file, and the test session sets NNT_COMMAND_SECRET for itself."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("NNT_", "DATABASE_URL", "DOCKER_", "COMPOSE_", "KAFKA_"))
        }
        argv = [str(PODMAN_COMPOSE), "--env-file", str(self.env_file), "-f", str(COMPOSE_FILE),
                "-p", self.project, *args]  # fmt: skip
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT
        )
        self.log.append(f"$ podman-compose {' '.join(args)}\n{done.stdout}{done.stderr}")
        assert done.returncode == 0, f"podman-compose {' '.join(args)}:\n{done.stderr[-4000:]}"
        return done.stdout

    def containers(self, *filters: str) -> list[dict]:
        """`podman ps -a` of this project's containers, as JSON."""
        args = ["ps", "-a", "--format", "json", "--filter", f"label={self.label}"]
        for extra in filters:
            args += ["--filter", extra]
        return json.loads(podman(*args) or "[]")

    @property
    def label(self) -> str:
        """The label podman-compose puts on every container of the project."""
        return f"io.podman.compose.project={self.project}"

    def container(self, service: str) -> str:
        """The (first) container name of a service."""
        found = [
            c["Names"][0] for c in self.containers(f"label=com.docker.compose.service={service}")
        ]
        assert found, f"no container of service {service}"
        return sorted(found)[0]

    def service_containers(self, service: str) -> list[str]:
        """Every container of a service (stream has replicas)."""
        rows = self.containers(f"label=com.docker.compose.service={service}")
        return sorted(c["Names"][0] for c in rows)

    def trainer_containers(self) -> list[dict]:
        """Containers the orchestrator of this project started (by their host label)."""
        args = ["ps", "-a", "--format", "json", "--filter", f"label=nntracker.host={self.hostname}"]
        return json.loads(podman(*args) or "[]")

    def psql(self, sql: str) -> str:
        """A query in the database, inside the db container, as the database's owner."""
        db = self.container("db")
        return podman("exec", db, "psql", "-X", "-At", "-U", "nntracker", "-d", "nntracker",
                      "-c", sql).strip()  # fmt: skip


class HealthTicker(threading.Thread):
    """What podman's systemd timers do: `podman healthcheck run` for each running container of
    the project that has a health check, every interval of its own (STARTING_PERIOD_S until it
    is healthy)."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(daemon=True, name="health-ticker")
        self.stack = stack
        self.stopped = threading.Event()
        self.due: dict[str, float] = {}

    def run(self) -> None:
        """Tick until stopped; a failed tick is reported, never fatal."""
        while not self.stopped.is_set():
            try:
                self.tick()
            except (subprocess.SubprocessError, AssertionError, ValueError) as exc:
                print(f"[compose] health ticker: {exc}", flush=True)
            self.stopped.wait(0.5)

    def tick(self) -> None:
        """Run each check that is due."""
        for row in self.stack.containers("status=running"):
            name = row["Names"][0]
            if self.stopped.is_set() or time.monotonic() < self.due.get(name, 0):
                continue
            interval = self._interval(name)
            if interval is None:
                self.due[name] = float("inf")  # no health check
                continue
            done = subprocess.run(["podman", "healthcheck", "run", name],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            healthy = done.returncode == 0
            self.due[name] = time.monotonic() + (interval if healthy else STARTING_PERIOD_S)

    def _interval(self, name: str) -> float | None:
        out = podman("inspect", "--format", "{{json .Config.Healthcheck}}", name, check=False)
        check = json.loads(out or "null")
        if not check or not check.get("Test") or check["Test"][0] == "NONE":
            return None
        return max(check.get("Interval", 30e9) / 1e9, STARTING_PERIOD_S)

    def stop(self) -> None:
        """Stop ticking (the check in progress ends first)."""
        self.stopped.set()
        self.join(timeout=90)


def health(container: str) -> str:
    """The health status podman records for a container (from the checks run so far)."""
    return podman("inspect", "--format", "{{.State.Health.Status}}", container).strip()


def wait_healthy(stack: Stack, services: tuple[str, ...], timeout: float) -> None:
    """Until every container of the services is healthy (as the ticker's checks found)."""
    names = [c for s in services for c in stack.service_containers(s)]

    def all_healthy() -> bool:
        return all(health(n) == "healthy" for n in names)

    polling.until(all_healthy, timeout, f"{', '.join(names)} healthy", interval=1.0,
                  context=lambda: "; ".join(f"{n}: {health(n)}" for n in names))  # fmt: skip


def wait_exited(stack: Stack, services: tuple[str, ...], timeout: float) -> None:
    """Until every container of the one-shot services has exited (restarts included)."""

    def state(name: str) -> str:
        return podman("inspect", "--format", "{{.State.Status}}", name).strip()

    names = [c for s in services for c in stack.service_containers(s)]
    polling.until(lambda: all(state(n) == "exited" for n in names), timeout,
                  f"{', '.join(names)} to finish", interval=1.0,
                  context=lambda: "; ".join(f"{n}: {state(n)}" for n in names))  # fmt: skip


def leftovers(stack: Stack) -> list[str]:
    """Everything of the project podman still holds: containers (trainers included), pods,
    networks, volumes."""
    found = [f"container {c['Names'][0]}" for c in stack.containers()]
    found += [f"trainer container {c['Names'][0]}" for c in stack.trainer_containers()]
    pods = json.loads(podman("pod", "ps", "--format", "json") or "[]")
    found += [f"pod {p['Name']}" for p in pods if stack.project in p["Name"]]
    nets = json.loads(podman("network", "ls", "--format", "json") or "[]")
    found += [
        f"network {n['name']}"
        for n in nets
        if n["name"].startswith(f"{stack.project}_")
        or (n.get("labels") or {}).get("io.podman.compose.project") == stack.project
    ]
    vols = json.loads(podman("volume", "ls", "--format", "json") or "[]")
    found += [
        f"volume {v['Name']}"
        for v in vols
        if v["Name"].startswith(f"{stack.project}_")
        or (v.get("Labels") or {}).get("io.podman.compose.project") == stack.project
    ]
    return found


def force_clean(stack: Stack) -> None:
    """After a failure: remove what `down` did not, so a failed run leaves nothing either."""
    for c in stack.trainer_containers():
        podman("rm", "-f", c["Names"][0], check=False)
    for c in stack.containers():
        podman("rm", "-f", c["Names"][0], check=False)
    for what in leftovers(stack):
        kind, name = what.split()[-2:]
        podman(kind, "rm", "-f", name, check=False)
