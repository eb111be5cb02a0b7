"""The command logic: garbage rejected with a reason, duplicates act once, the grid expands
into queued runs and `start` commands, slots and quotas make a start wait."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from orchestrator.rundirs import RunDir, RunState
from orchestrator.service import CommandLog, Orchestrator
from schemas import codecs
from tests.unit.orchestrator.fakes import create_command, events, lifecycle, make, signed, starts


@pytest.fixture
def orch(tmp_path: Path) -> Orchestrator:
    return make(tmp_path)


@pytest.mark.parametrize("raw", [b"", b"not json", b'{"type": "pause"}', b'{"type": "boom"}'])
def test_it_rejects_garbage_with_a_reason(orch: Orchestrator, raw: bytes) -> None:
    assert orch.on_work(raw)
    ((_, status, fields),) = events(orch)
    assert status == "rejected" and fields["message"]
    orch.on_broadcast(raw)  # the per-host stream stays silent: one answer per command
    assert len(events(orch)) == 1


def test_it_queues_each_simulation_and_publishes_its_start(orch: Orchestrator) -> None:
    orch.on_work(codecs.dumps(create_command()))
    queued = [e for e in events(orch) if e[1] == "queued"]
    assert len(queued) == 2 and all(e[2]["name"].startswith("exp") for e in queued)
    assert [c.simulation_id for c in starts(orch)] == [e[0] for e in queued]
    assert all(c.type == "start" for c in starts(orch))


def test_it_starts_within_its_slots_and_makes_the_rest_wait(orch: Orchestrator) -> None:
    orch.on_work(codecs.dumps(create_command()))
    first, second = starts(orch)
    assert orch.on_work(codecs.dumps(first)) is True
    assert orch.on_work(codecs.dumps(second)) is False, "no free slot: the offset must wait"
    assert RunDir(orch.settings.runs_dir, first.simulation_id).read().owned_by("h1")
    assert RunDir(orch.settings.runs_dir, second.simulation_id).read().state == "queued"


def test_it_acts_once_on_a_command_delivered_twice(orch: Orchestrator) -> None:
    raw = codecs.dumps(create_command())
    orch.on_work(raw)
    count = len(events(orch))
    orch.on_work(raw)
    assert len(events(orch)) == count


def test_it_refuses_to_pause_a_queued_run_and_says_why(orch: Orchestrator) -> None:
    orch.on_work(codecs.dumps(create_command()))
    queued = starts(orch)[0].simulation_id
    orch.on_broadcast(codecs.dumps(lifecycle("pause", queued)))
    _, status, fields = events(orch)[-1]
    assert status == "rejected" and "only running" in fields["message"]


def test_it_leaves_a_run_another_host_owns_alone(orch: Orchestrator) -> None:
    orch.on_work(codecs.dumps(create_command()))
    sid = starts(orch)[0].simulation_id
    RunDir(orch.settings.runs_dir, sid).write(RunState("running", host="h2"))
    count = len(events(orch))
    orch.on_broadcast(codecs.dumps(lifecycle("stop", sid)))
    assert len(events(orch)) == count, "the owner answers, not us"


def test_it_rejects_a_config_error_naming_the_field(orch: Orchestrator) -> None:
    cmd = create_command()
    cmd.experiment["batch_size"] = 0
    orch.on_work(codecs.dumps(signed(cmd)))  # signed again: the payload changed
    _, status, fields = events(orch)[-1]
    assert status == "rejected" and "experiment.batch_size" in fields["message"]


def test_it_holds_a_start_beyond_the_owner_quota_with_a_reason(tmp_path: Path) -> None:
    orch = make(tmp_path, nnt_max_runs=5, nnt_quota_max_runs=1)
    orch.on_work(codecs.dumps(create_command()))
    first, second = starts(orch)
    assert orch.on_work(codecs.dumps(first))
    assert not orch.on_work(codecs.dumps(second))
    _, status, fields = events(orch)[-1]
    assert status == "queued" and "NNT_QUOTA_MAX_RUNS=1" in fields["message"]


def test_it_fails_a_run_that_can_never_fit_the_memory_quota(tmp_path: Path) -> None:
    orch = make(tmp_path, nnt_quota_max_memory=1024**3, nnt_run_memory_bytes=2 * 1024**3)
    orch.on_work(codecs.dumps(create_command()))
    assert orch.on_work(codecs.dumps(starts(orch)[0]))
    _, status, fields = events(orch)[-1]
    assert status == "failed" and "NNT_QUOTA_MAX_MEMORY" in fields["message"]


def test_it_deletes_and_releases_datasets_no_run_needs(orch: Orchestrator) -> None:
    orch.on_work(codecs.dumps(create_command()))
    one, two = (c.simulation_id for c in starts(orch))
    dataset = orch.settings.datasets_dir / ("a" * 64 + ".npz")
    orch.on_broadcast(codecs.dumps(lifecycle("delete", one)))
    assert dataset.exists(), "the other simulation still needs it"
    orch.on_broadcast(codecs.dumps(lifecycle("delete", two)))
    assert not dataset.exists() and not (orch.settings.runs_dir / str(two)).exists()
    assert [e[1] for e in events(orch)][-2:] == ["deleted", "deleted"]


def test_it_remembers_commands_across_restarts(tmp_path: Path) -> None:
    cid = uuid.uuid4()
    assert CommandLog(tmp_path / "c.log").add(cid)
    assert not CommandLog(tmp_path / "c.log").add(cid)
