"""Pre-flight in the orchestrator: a `check` is answered per field, a `create` whose check
fails queues nothing and fails its runs with one line, a passed check is not run twice."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from orchestrator.creation import Deferred
from orchestrator.runtime import Handle
from orchestrator.service import Orchestrator
from schemas import codecs
from schemas.commands import CheckCommand
from schemas.run import CHECK_FILE, RunSpec
from tests.unit.orchestrator.fakes import (
    IdleRuntime,
    create_command,
    events,
    make,
    signed,
    starts,
)

pytestmark = pytest.mark.unit


class CheckingRuntime(IdleRuntime):
    """A runtime whose trainer answers a check at once with `found` (None: writes nothing)."""

    def __init__(self, found: dict[str, Any] | None) -> None:
        super().__init__()
        self.found = found
        self.specs: list[RunSpec] = []

    def start(self, spec: RunSpec, run_dir: Path) -> Handle:
        self.specs.append(spec)
        if self.found is not None:
            (run_dir / CHECK_FILE).write_text(json.dumps(self.found))
        return super().start(spec, run_dir)

    def exit_code(self, handle: Handle) -> int | None:
        return 0 if self.found is not None else 3


def finish(orch: Orchestrator, value: bytes) -> None:
    """Run a Deferred the way the consumer does (work off the loop, then finish on it)."""
    result = orch.on_work(value)
    assert isinstance(result, Deferred)
    try:
        outcome = result.run()
    except Exception as exc:  # noqa: BLE001 - handed to finish, as the consumer does
        outcome = exc
    result.finish(outcome)


def check_of(create: Any) -> CheckCommand:
    return signed(CheckCommand(experiment_id=create.experiment_id, experiment=create.experiment))


def test_it_answers_a_check_with_the_trainers_errors_per_field(tmp_path: Path) -> None:
    errors = {"loss_functions.0.conf.from_logit": "unknown option 'from_logit'; did you mean …"}
    runtime = CheckingRuntime({"errors": errors, "notes": []})
    orch = make(tmp_path, runtime, nnt_preflight=True)
    check = check_of(create_command())
    finish(orch, codecs.dumps(check))
    ((sid, status, fields),) = events(orch)
    assert (sid, status, fields["command_id"], fields["errors"]) == (
        None, "rejected", check.command_id, errors,
    )  # fmt: skip
    assert fields["message"].startswith("pre-flight: loss_functions.0.conf.from_logit: ")
    assert runtime.specs[0].mode == "check" and runtime.calls[-1] == "kill"
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_it_accepts_a_passing_check_with_notes_and_then_creates_without_checking_again(
    tmp_path: Path,
) -> None:
    runtime = CheckingRuntime({"errors": {}, "notes": ["dataset_train: scaled"]})
    orch = make(tmp_path, runtime, nnt_preflight=True)
    create = create_command()
    finish(orch, codecs.dumps(check_of(create)))
    ((_, status, fields),) = events(orch)
    assert (status, fields["notes"]) == ("accepted", ["dataset_train: scaled"])
    assert orch.on_work(codecs.dumps(create)) is True  # no Deferred: the check passed here
    assert len(runtime.specs) == 1
    assert [e[1] for e in events(orch)].count("queued") == 2 and len(starts(orch)) == 2


def test_a_create_whose_check_fails_queues_nothing_and_fails_each_run_in_one_line(
    tmp_path: Path,
) -> None:
    runtime = CheckingRuntime({"errors": {"dataset_train": "label 12 is outside 0..9"}})
    orch = make(tmp_path, runtime, nnt_preflight=True)
    finish(orch, codecs.dumps(create_command()))
    failed = [f for _, s, f in events(orch) if s == "failed"]
    assert len(failed) == 2 and not starts(orch)
    assert {f["message"] for f in failed} == {"pre-flight: dataset_train: label 12 is outside 0..9"}
    assert [e[1] for e in events(orch)][-1] == "rejected"


def test_a_check_that_crashes_says_so_instead_of_passing(tmp_path: Path) -> None:
    orch = make(tmp_path, CheckingRuntime(None), nnt_preflight=True)
    finish(orch, codecs.dumps(check_of(create_command())))
    ((_, status, fields),) = events(orch)
    assert status == "rejected"
    assert "exit code 3" in fields["errors"]["__all__"]


def test_a_check_with_a_broken_configuration_is_answered_at_once(tmp_path: Path) -> None:
    orch = make(tmp_path, CheckingRuntime({"errors": {}}), nnt_preflight=True)
    bad = signed(CheckCommand(experiment_id=uuid.uuid4(), experiment={"name": "x"}))
    assert orch.on_work(codecs.dumps(bad)) is True
    ((_, status, fields),) = events(orch)
    assert status == "rejected" and "config" in fields["errors"]
