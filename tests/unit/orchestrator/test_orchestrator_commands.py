"""The command loop: garbage is rejected with a reason, duplicates act once, the grid expands."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.runtime import Handle
from orchestrator.service import CommandLog, Orchestrator
from orchestrator.settings import OrchestratorSettings
from schemas import codecs
from schemas.commands import CreateCommand, LifecycleCommand


class RecordingPublisher:
    """Collects status events instead of sending them (pure-logic unit test)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, str, dict[str, Any]]] = []

    def status(self, simulation_id: Any, status: str, **fields: Any) -> None:
        self.events.append((simulation_id, status, fields))

    def flush(self, timeout: float = 10.0) -> None:
        pass


class IdleRuntime:
    """Starts nothing; remembers what it was asked."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, simulation_id: uuid.UUID, run_dir: Path) -> Handle:
        self.calls.append(f"start {simulation_id}")
        return Handle(simulation_id, run_dir)

    def exit_code(self, handle: Handle) -> int | None:
        return None

    def pause(self, handle: Handle) -> None:
        self.calls.append("pause")

    def unpause(self, handle: Handle) -> None:
        self.calls.append("unpause")

    def stop(self, handle: Handle) -> None:
        self.calls.append("stop")

    def remove(self, handle: Handle) -> None:
        self.calls.append("remove")


@pytest.fixture
def orch(tmp_path: Path) -> Orchestrator:
    settings = OrchestratorSettings(nnt_home=tmp_path, nnt_max_runs=1)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / ("a" * 64 + ".npz")).write_bytes(b"x")
    return Orchestrator(settings, IdleRuntime(), RecordingPublisher())  # type: ignore[arg-type]


def create_command() -> CreateCommand:
    return CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana", experiment={
        "name": "exp", "dataset_train": "stored:" + "a" * 64 + ".npz", "learning_rates": [0.1, 0.01],
        "model": {"class_name": "Sequential", "config": {"layers": []}},
    })


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"type": "pause"}', b'{"type": "boom"}'])
def test_it_rejects_garbage_with_a_reason(orch: Orchestrator, raw: bytes) -> None:
    orch.handle_message(raw)
    (_, status, fields), = orch.publisher.events  # type: ignore[attr-defined]
    assert status == "rejected" and fields["message"]


def test_it_expands_the_grid_and_queues_beyond_its_slots(orch: Orchestrator) -> None:
    cmd = create_command()
    orch.handle_message(codecs.dumps(cmd))
    statuses = [s for _, s, _ in orch.publisher.events]  # type: ignore[attr-defined]
    assert statuses.count("queued") == 2 and statuses.count("starting") == 1
    assert len(orch.queue) == 1


def test_it_acts_once_on_a_command_delivered_twice(orch: Orchestrator) -> None:
    raw = codecs.dumps(create_command())
    orch.handle_message(raw)
    count = len(orch.publisher.events)  # type: ignore[attr-defined]
    orch.handle_message(raw)
    assert len(orch.publisher.events) == count  # type: ignore[attr-defined]


def test_it_refuses_to_pause_a_queued_run_and_says_why(orch: Orchestrator) -> None:
    orch.handle_message(codecs.dumps(create_command()))
    queued = orch.queue[0]
    orch.handle_message(codecs.dumps(LifecycleCommand(type="pause", simulation_id=queued)))
    _, status, fields = orch.publisher.events[-1]  # type: ignore[attr-defined]
    assert status == "rejected" and "only running" in fields["message"]


def test_it_rejects_a_config_error_naming_the_field(orch: Orchestrator) -> None:
    cmd = create_command()
    cmd.experiment["batch_size"] = 0
    orch.handle_message(codecs.dumps(cmd))
    _, status, fields = orch.publisher.events[-1]  # type: ignore[attr-defined]
    assert status == "rejected" and "experiment.batch_size" in fields["message"]


def test_it_remembers_commands_across_restarts(tmp_path: Path) -> None:
    cid = uuid.uuid4()
    assert CommandLog(tmp_path / "c.log").add(cid)
    assert not CommandLog(tmp_path / "c.log").add(cid)
    assert json.loads(json.dumps(str(cid)))
