"""A command counts as handled only once its work is done: an orchestrator that dies half-way
acts on the redelivery, and a redelivered `start` that already took effect stays silent."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.rundirs import RunDir
from schemas import codecs
from schemas.commands import LifecycleCommand
from tests.unit.orchestrator.fakes import (
    IdleRuntime,
    RecordingPublisher,
    create_command,
    events,
    lifecycle,
    make,
    starts,
)


class Crash(BaseException):
    """The orchestrator process dying half-way (nothing it could catch and answer)."""


class CrashingPublisher(RecordingPublisher):
    """Dies at the n-th `start` it is asked to queue, or at the first status `crash_on`."""

    def __init__(self, at_command: int = -1, crash_on: str = "") -> None:
        super().__init__()
        self.at_command, self.crash_on = at_command, crash_on

    def command(self, command: LifecycleCommand) -> None:
        if len(self.commands) == self.at_command:
            raise Crash
        super().command(command)

    def status(self, simulation_id: Any, status: str, **fields: Any) -> None:
        if status == self.crash_on:
            raise Crash
        super().status(simulation_id, status, **fields)


def test_it_redoes_a_create_that_crashed_half_way(tmp_path: Path) -> None:
    raw = codecs.dumps(create_command())
    dying = make(tmp_path, publisher=CrashingPublisher(at_command=1))
    with pytest.raises(Crash):
        dying.on_work(raw)  # one start queued, then the process dies: the offset is not committed
    restarted = make(tmp_path)
    assert restarted.on_work(raw) is True  # the redelivery
    assert len({c.simulation_id for c in starts(restarted)}) == 2, "every simulation is queued"
    assert [e[1] for e in events(restarted)][-1] == "accepted"
    again = len(events(restarted))
    restarted.on_work(raw)
    assert len(events(restarted)) == again, "once done, a further delivery has no effect"


def test_it_ignores_a_redelivered_start_on_any_host(tmp_path: Path) -> None:
    runtime = IdleRuntime()
    orch = make(tmp_path, runtime=runtime, nnt_max_runs=2)
    orch.on_work(codecs.dumps(create_command()))
    first = starts(orch)[0]
    assert orch.on_work(codecs.dumps(first)) is True
    seen = len(events(orch))
    assert orch.on_work(codecs.dumps(first)) is True
    other_host = make(tmp_path, nnt_hostname="h2", nnt_max_runs=2)
    assert other_host.on_work(codecs.dumps(first)) is True
    assert events(orch)[seen:] == [] and events(other_host) == [], "no false 'rejected'"
    assert runtime.calls == [f"start {first.simulation_id}"]
    assert RunDir(orch.settings.runs_dir, first.simulation_id).read().state == "running"
    # A new start (another command id) of a running simulation is still refused.
    orch.on_work(codecs.dumps(lifecycle("start", first.simulation_id)))
    _, status, fields = events(orch)[-1]
    assert status == "rejected" and "cannot start a running simulation" in fields["message"]


def test_it_finishes_a_delete_that_crashed_half_way(tmp_path: Path) -> None:
    dying = make(tmp_path, publisher=CrashingPublisher(crash_on="deleted"))
    dying.on_work(codecs.dumps(create_command()))
    sid = starts(dying)[0].simulation_id
    delete = lifecycle("delete", sid, command_id=uuid.uuid4())
    with pytest.raises(Crash):
        dying.on_broadcast(codecs.dumps(delete))
    other_host = make(tmp_path, nnt_hostname="h2")
    other_host.on_broadcast(codecs.dumps(delete))
    assert events(other_host) == [], "the claimer (h1) answers, not a second host"
    restarted = make(tmp_path)
    restarted.on_broadcast(codecs.dumps(delete))
    assert [(e[0], e[1], e[2]["command_id"]) for e in events(restarted)] == [
        (sid, "deleted", delete.command_id)
    ]
    assert not (restarted.settings.runs_dir / str(sid)).exists()
