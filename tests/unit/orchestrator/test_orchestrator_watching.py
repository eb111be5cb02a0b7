"""Watching runs: a runtime error on one run is logged with its id and the loop goes on; a
stopped run that ignores SIGTERM is killed after NNT_STOP_GRACE_SECONDS."""

from __future__ import annotations

import logging
import math
import time
import uuid
from pathlib import Path

import psutil
import pytest
from docker.errors import APIError

from orchestrator.rundirs import RunDir
from orchestrator.runtime import Handle, ProcessRuntime
from schemas import codecs
from schemas.epochs import EpochEvent
from tests.standins import sleeping_python
from tests.unit.orchestrator.fakes import (
    IdleRuntime,
    create_command,
    events,
    lifecycle,
    make,
    settings_of,
    starts,
)


class BrokenEngine(IdleRuntime):
    """A container engine that fails every call about one run; the other run ends normally."""

    def __init__(self) -> None:
        super().__init__()
        self.broken: uuid.UUID | None = None
        self.ended: set[uuid.UUID] = set()

    def _check(self, handle: Handle) -> None:
        if handle.simulation_id == self.broken:
            raise APIError("500 Server Error: engine not answering")

    def exit_code(self, handle: Handle) -> int | None:
        self._check(handle)
        return 0 if handle.simulation_id in self.ended else None

    def sample(self, handle: Handle) -> None:
        self._check(handle)

    def stop(self, handle: Handle) -> None:
        self._check(handle)


def test_it_logs_a_runtime_error_with_the_run_id_and_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = BrokenEngine()
    orch = make(tmp_path, runtime=engine, nnt_max_runs=2, nnt_resource_period=0.01)
    orch.on_work(codecs.dumps(create_command()))
    for start in starts(orch):
        assert orch.on_work(codecs.dumps(start)) is True
    broken, healthy = (c.simulation_id for c in starts(orch))
    engine.broken, engine.ended = broken, {healthy}
    nan = EpochEvent(simulation_id=broken, epoch=1, total_epochs=3, metrics={"loss": math.nan})
    with caplog.at_level(logging.ERROR, logger="orchestrator.service"):
        time.sleep(0.02)
        orch.tick()  # neither raises
        orch.on_epoch(codecs.dumps(nan))
    assert healthy not in orch.handles, "the other run's end is still noticed"
    assert RunDir(orch.settings.runs_dir, healthy).read().state == "stopped"
    assert broken in orch.handles, "the failing run is checked again on the next tick"
    logged = [r.getMessage() for r in caplog.records]
    assert any(str(broken) in m and "exit check" in m for m in logged)
    assert any(str(broken) in m and "auto-stop" in m for m in logged)


def sigterm_ignoring_python(tmp_path: Path) -> str:
    """A stand-in for the trainer's Python that ignores SIGTERM (and its arguments)."""
    return sleeping_python(tmp_path, ignore_term=True)


def test_it_kills_a_stopped_run_that_ignores_sigterm_after_the_grace_period(
    tmp_path: Path,
) -> None:
    settings = settings_of(
        tmp_path,
        nnt_trainer_python=sigterm_ignoring_python(tmp_path),
        nnt_stop_grace_seconds=1,
        nnt_resource_period=0.1,
    )
    overrides = settings.model_dump(exclude={"nnt_home"})
    orch = make(tmp_path, ProcessRuntime(settings), **overrides)
    orch.on_work(codecs.dumps(create_command()))
    sid = starts(orch)[0].simulation_id
    orch.on_work(codecs.dumps(starts(orch)[0]))
    pid = orch.handles[sid].pid
    assert pid is not None
    deadline = time.monotonic() + 10
    while psutil.Process(pid).cmdline()[:1] != ["sleep"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the trap is set once the shell has exec'd sleep
    orch.on_broadcast(codecs.dumps(lifecycle("stop", sid)))
    deadline = time.monotonic() + 20
    while sid in orch.handles and time.monotonic() < deadline:
        orch.tick()
        time.sleep(0.1)
    if sid in orch.handles:
        ProcessRuntime(settings).kill(orch.handles[sid])
        pytest.fail("the run that ignores SIGTERM is still alive 20 s after its stop")
    assert not psutil.pid_exists(pid)
    _, status, fields = events(orch)[-1]
    assert status == "stopped" and "SIGTERM ignored for 1 s" in fields["message"]
    assert RunDir(settings.runs_dir, sid).read().state == "stopped", "resumable"
