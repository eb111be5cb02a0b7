"""What the CLI shows while it transfers or waits: rich progress bars on a terminal, plain
lines otherwise (logs, pipes, CI), always on stderr so stdout stays the command's result."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TextIO

TERMINAL = frozenset({"stopped", "finished", "failed", "deleted"})


def human_bytes(n: float) -> str:
    """1536 -> '1.5 KB' (decimal units, as the browser shows sizes)."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def _console(stream: TextIO) -> Any | None:
    """A rich console on a terminal; None when the stream is not one or rich is missing."""
    try:
        from rich.console import Console
    except ImportError:
        return None
    console = Console(file=stream)
    return console if console.is_terminal else None


class Transfer:
    """Bytes moving one way: `start(total)` once the size is known, `advance(n)` per chunk."""

    def __init__(self, verb: str, what: str, stream: TextIO) -> None:
        self.verb, self.what, self.stream = verb, what, stream
        self.done = 0
        self.total: int | None = None
        self.began = time.monotonic()
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int | None) -> None:
        """Open the bar (a terminal) with the size when it is known."""
        self.total = total
        console = _console(self.stream)
        if console is None:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn(f"{self.verb} {self.what}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(self.what, total=total)

    def advance(self, n: int) -> None:
        """Count `n` more bytes."""
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, advance=n)

    def close(self, ok: bool) -> None:
        """Remove the bar; print one summary line when the transfer completed."""
        if self._bar is not None:
            self._bar.stop()
        if ok:
            seconds = max(time.monotonic() - self.began, 1e-3)
            rate = human_bytes(self.done / seconds)
            print(
                f"{self.verb} {self.what}: {human_bytes(self.done)} in {seconds:.1f}s ({rate}/s)",
                file=self.stream,
            )


@contextmanager
def transfer(verb: str, what: str, stream: TextIO | None = None) -> Iterator[Transfer]:
    """A Transfer shown while the block runs."""
    shown = Transfer(verb, what, stream or sys.stderr)
    ok = False
    try:
        yield shown
        ok = True
    finally:
        shown.close(ok)


def describe(sim: dict[str, Any]) -> str:
    """One run's state as a line: status, epoch of total, and why it failed or was stopped
    early."""
    total = sim.get("total_epochs") or 0
    text = f"{str(sim['id'])[:8]}  {sim['status']:<8}  epoch {sim.get('epoch', 0)}/{total}"
    early = sim["status"] == "stopped" and sim.get("early_stop")
    why = reason(sim) if sim["status"] == "failed" or early else ""
    return f"{text}  {why}" if why else text


def reason(sim: dict[str, Any]) -> str:
    """Why a run failed in one line: its message (the trainer's one-line summary), else the
    last line of the full error (rows written before messages were one line)."""
    message, error = (sim.get("message") or "").strip(), (sim.get("error") or "").strip()
    line = message.splitlines()[0] if message else (error.splitlines()[-1] if error else "")
    return line[:200]


def follow(
    fetch: Callable[[str], dict[str, Any]],
    ids: list[str],
    interval: float,
    timeout: float | None,
    stream: TextIO | None = None,
) -> dict[str, dict[str, Any]]:
    """Ask for each run's state every `interval` seconds until every run has ended (or the
    timeout); show a bar per run on a terminal, a line per change otherwise. Returns the last
    state of each run."""
    stream = stream or sys.stderr
    console = _console(stream)
    last: dict[str, dict[str, Any]] = {}
    deadline = None if timeout is None else time.monotonic() + timeout
    with _Board(console, ids) as board:
        while True:
            for sid in ids:
                if sid in last and last[sid]["status"] in TERMINAL:
                    continue
                sim = fetch(sid)
                changed = sid not in last or (
                    (last[sid]["status"], last[sid].get("epoch"))
                    != (sim["status"], sim.get("epoch"))
                )
                last[sid] = sim
                if changed and console is not None:
                    board.show(sid, sim)
                elif changed:
                    print(describe(sim), file=stream, flush=True)
            if all(s["status"] in TERMINAL for s in last.values()):
                return last
            if deadline is not None and time.monotonic() >= deadline:
                return last
            time.sleep(interval)


class _Board:
    """One rich bar per run (terminal only)."""

    def __init__(self, console: Any | None, ids: list[str]) -> None:
        self.console, self.ids = console, ids
        self.bar: Any = None
        self.tasks: dict[str, Any] = {}

    def __enter__(self) -> _Board:
        if self.console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self.bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("epochs"),
                console=self.console,
            )
            self.bar.start()
            for sid in self.ids:
                self.tasks[sid] = self.bar.add_task(f"{sid[:8]} …", total=None)
        return self

    def show(self, sid: str, sim: dict[str, Any]) -> None:
        """Move a run's bar to its epoch and status."""
        self.bar.update(
            self.tasks[sid],
            description=f"{sid[:8]} {sim['status']:<8}",
            completed=sim.get("epoch") or 0,
            total=sim.get("total_epochs") or None,
        )

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
