"""Reconciliation after an orchestrator restart: a vanished run is failed, a live trainer is
re-adopted through the pid in its run directory, and only runs nobody owns are orphans."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.rundirs import RunDir, RunState
from orchestrator.runtime import Handle, ProcessRuntime
from orchestrator.service import Orchestrator
from schemas import codecs
from tests.unit.orchestrator.fakes import (
    IdleRuntime,
    RecordingPublisher,
    create_command,
    events,
    make,
    settings_of,
    starts,
)


def queued_runs(tmp_path: Path) -> list[uuid.UUID]:
    """Two simulations written to run dirs by a create (the orchestrator that did it is gone)."""
    orch = make(tmp_path)
    orch.on_work(codecs.dumps(create_command()))
    return [c.simulation_id for c in starts(orch)]


@pytest.fixture
def trainer_like(tmp_path: Path) -> Iterator[tuple[uuid.UUID, subprocess.Popen[bytes]]]:
    """A live process whose command line is that of a launcher of the first run's dir."""
    sid = queued_runs(tmp_path)[0]
    run_dir = tmp_path / "runs" / str(sid)
    proc = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", "import time; time.sleep(600)", "orchestrator.launch", str(run_dir)]
    )
    yield sid, proc
    proc.kill()
    proc.wait()


def test_it_fails_a_run_whose_trainer_vanished(tmp_path: Path) -> None:
    sid, other = queued_runs(tmp_path)
    dead = subprocess.Popen(["true"])  # noqa: S603, S607
    dead.wait()
    RunDir(tmp_path / "runs", sid).write(
        RunState("running", host="h1", runtime="process", pid=dead.pid)
    )
    RunDir(tmp_path / "runs", other).write(RunState("running", host="h2", runtime="process"))
    settings = settings_of(tmp_path)
    orch = Orchestrator(settings, ProcessRuntime(settings), RecordingPublisher())
    orch.reconcile()
    assert orch.handles == {}
    assert [(e[0], e[1]) for e in events(orch)] == [(sid, "failed")]
    assert "vanished" in events(orch)[0][2]["message"]
    assert RunDir(tmp_path / "runs", sid).read().state == "failed"
    assert RunDir(tmp_path / "runs", other).read().state == "running", "h2's run is not ours"


def test_it_readopts_a_live_trainer_through_its_pid(
    tmp_path: Path, trainer_like: tuple[uuid.UUID, subprocess.Popen[bytes]]
) -> None:
    sid, proc = trainer_like
    RunDir(tmp_path / "runs", sid).write(
        RunState("paused", host="h1", runtime="process", pid=proc.pid)
    )
    settings = settings_of(tmp_path)
    orch = Orchestrator(settings, ProcessRuntime(settings), RecordingPublisher())
    orch.reconcile()
    assert list(orch.handles) == [sid] and orch.handles[sid].pid == proc.pid
    _, status, fields = events(orch)[-1]
    assert status == "paused" and "re-adopted by h1" in fields["message"]
    orch.tick()
    assert sid in orch.handles, "alive: still watched"
    proc.kill()
    proc.wait()
    orch.tick()
    assert sid not in orch.handles and RunDir(tmp_path / "runs", sid).read().state == "failed"


def test_it_refuses_to_adopt_a_reused_pid(tmp_path: Path) -> None:
    sid = queued_runs(tmp_path)[0]
    unrelated = subprocess.Popen(["sleep", "600"])  # noqa: S603, S607
    try:
        RunDir(tmp_path / "runs", sid).write(
            RunState("running", host="h1", runtime="process", pid=unrelated.pid)
        )
        settings = settings_of(tmp_path)
        orch = Orchestrator(settings, ProcessRuntime(settings), RecordingPublisher())
        orch.reconcile()
        assert orch.handles == {} and events(orch)[-1][1] == "failed"
        assert unrelated.poll() is None, "a process that is not the trainer is left alone"
    finally:
        unrelated.kill()
        unrelated.wait()


class Engine(IdleRuntime):
    """A container runtime with one surviving container; records what reconcile calls orphans."""

    name = "docker"

    def __init__(self, alive: uuid.UUID) -> None:
        super().__init__()
        self.alive = alive
        self.known: set[uuid.UUID] | None = None

    def adopt(self, simulation_id: uuid.UUID, run_dir: Path, state: Any) -> Handle | None:
        if simulation_id != self.alive:
            return None
        return Handle(simulation_id, run_dir, container=state.container)

    def orphans(self, known: set[uuid.UUID]) -> list[str]:
        self.known = set(known)
        return []


def test_it_keeps_adopted_containers_and_lets_the_runtime_remove_the_rest(
    tmp_path: Path,
) -> None:
    alive, gone = queued_runs(tmp_path)
    for sid in (alive, gone):
        RunDir(tmp_path / "runs", sid).write(
            RunState("running", host="h1", runtime="docker", container=f"c-{sid}")
        )
    engine = Engine(alive)
    orch = make(tmp_path, runtime=engine)
    orch.reconcile()
    assert engine.known == {alive}, "only adopted runs are spared; every other one is an orphan"
    assert {(e[0], e[1]) for e in events(orch)} == {(alive, "running"), (gone, "failed")}
    assert RunDir(tmp_path / "runs", gone).read().state == "failed"
