"""Run `nntracker up --demo` as a user would, in its own NNT_HOME and ports."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from tests.services import free_port

ROOT = Path(__file__).resolve().parents[2]
UP_LINE = re.compile(r"NN Tracker is up: (\S+)")
CHROMIUM = os.environ.get("NNT_CHROMIUM", "/usr/bin/chromium")
# Headless Chromium as root in a container, with nothing fetched in the background.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def launch_chromium(playwright: Any, flags: list[str] | None = None) -> Any:
    """Debian's Chromium under Playwright (a clear failure where it is not installed)."""
    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install chromium"
    return playwright.chromium.launch(executable_path=CHROMIUM, args=flags or CHROMIUM_FLAGS)


def log_in(page: Any, url: str, user: str, password: str) -> None:
    """Open `url` (a page that needs login), sign in on the login page it redirects to, and
    wait until the browser is back at `url`."""
    page.goto(url)
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(url, timeout=30_000)


def token_session(base: str, user: str, password: str) -> Any:
    """A `requests` session that calls the REST API with a token of `user`."""
    import requests

    session = requests.Session()
    token = session.post(f"{base}/api/tokens", json={"username": user, "password": password})
    assert token.ok, token.text
    session.headers["Authorization"] = f"Bearer {token.json()['token']}"
    return session


DEMO_LINE = re.compile(r"demo ready: open (\S+)\s+\(login: (\S+) / (\S+)\)")


@dataclass
class UpProcess:
    """The foreground `nntracker up` and what it printed."""

    proc: subprocess.Popen[str]
    home: Path
    ports: dict[str, int]
    env: dict[str, str] = field(default_factory=dict)  # what `nntracker` commands need to reach it
    lines: list[str] = field(default_factory=list)
    inbox: queue.Queue[str] = field(default_factory=queue.Queue)

    def wait_for(self, pattern: re.Pattern[str], timeout: float) -> re.Match[str]:
        """Block until a printed line matches; fail with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.inbox.get(timeout=1)
            except queue.Empty:
                if self.proc.poll() is not None:
                    break
                continue
            match = pattern.search(line)
            if match:
                return match
        tail = "\n".join(self.lines[-60:])
        raise AssertionError(
            f"`nntracker up` never printed {pattern.pattern!r}; last lines:\n{tail}"
        )

    def ensure_user(self, name: str, password: str, staff: bool = False) -> None:
        """An account in this stack's database, made with `nntracker manage ensure_user`."""
        done = subprocess.run(  # noqa: S603 - our own CLI
            [sys.executable, "-m", "client", "manage", "ensure_user", "--username", name,
             "--password-stdin", *(["--staff"] if staff else [])],
            input=password + "\n", cwd=ROOT, env=self.env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr

    def interrupt(self, timeout: float = 90) -> int:
        """Ctrl-C, as a user would; returns the exit code."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(timeout)

    def child(self, *argv_part: str) -> psutil.Process:
        """The supervised component whose command line holds `argv_part` (e.g. "web", "serve")."""
        for proc in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                cmd = proc.cmdline()
            except psutil.Error:
                continue
            if all(part in cmd for part in argv_part):
                return proc
        raise AssertionError(f"no child of `nntracker up` runs {' '.join(argv_part)}")

    def leftovers(self) -> list[str]:
        """Processes still running that belong to this stack (by NNT_HOME or port)."""
        found = []
        for proc in psutil.process_iter(["pid", "cmdline", "environ"]):
            try:
                cmd = " ".join(proc.info["cmdline"] or [])
                env = proc.info.get("environ") or {}
            except (psutil.Error, TypeError):
                continue
            if proc.pid == os.getpid():
                continue
            if str(self.home) in cmd or env.get("NNT_HOME") == str(self.home):
                found.append(f"{proc.pid} {cmd[:120]}")
        return found


@contextlib.contextmanager
def running_stack(prefix: str) -> Iterator[UpProcess]:
    """`nntracker up` (no demo) in a fresh NNT_HOME, up and healthy; Ctrl-C at the end.

    The home is not under pytest's basetemp: that is private to root (0700), and the embedded
    PostgreSQL runs as its own user.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        up = start_up(home, demo=False)
        try:
            up.wait_for(UP_LINE, timeout=420)
            yield up
        finally:
            if up.proc.poll() is None:
                up.interrupt()


def start_up(home: Path, demo: bool = True) -> UpProcess:
    """Start the stack on free ports (with the demo); output is collected line by line."""
    kafka_port, web_port, pg_port = free_port(pair=True), free_port(), free_port()
    env = {
        **os.environ,
        "NNT_HOME": str(home),
        "NNT_WEB_PORT": str(web_port),
        "NNT_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "NNT_PG_PORT": str(pg_port),
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "client", "up", *(["--demo"] if demo else [])],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    up = UpProcess(proc, home, {"kafka": kafka_port, "web": web_port, "pg": pg_port}, env)

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            up.lines.append(line.rstrip())
            up.inbox.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return up


def started_run(api: Any, base: str, prefix: str) -> str:
    """A demo run long enough to stay running through a test (its data under
    test-artifacts/<prefix>-*); its id, once running."""
    import json
    import uuid

    from tests.polling import until
    from trainer.demo import write_demo

    folder = ROOT / "test-artifacts" / f"{prefix}-{uuid.uuid4().hex[:6]}"
    config, model, paths = write_demo(folder, total_epochs=400)
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    files = {"model": ("model.json", json.dumps(model).encode())}
    files |= {f"dataset_{r}": (f"{r}.npz", Path(p).read_bytes()) for r, p in paths.items()}
    made = api.post(f"{base}/api/experiments", data={"config": json.dumps(config)}, files=files)
    assert made.status_code == 201, made.text
    sid = str(made.json()["simulations"][0])
    status = lambda: api.get(f"{base}/api/simulations/{sid}").json()["status"]  # noqa: E731
    until(lambda: status() == "running", 240, "the run to start")
    return sid


def watch(page: Any) -> list[str]:
    """JavaScript errors of a page, collected as they happen."""
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    return problems
