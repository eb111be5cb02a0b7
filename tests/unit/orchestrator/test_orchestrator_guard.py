"""Commands are acted on only for who they prove to be: a forged, unsigned, stale or foreign
command is refused with a reason and leaves the run untouched; account limits are enforced."""

from __future__ import annotations

import hashlib
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from orchestrator import experiments
from orchestrator.creation import Deferred
from orchestrator.rundirs import RunDir
from orchestrator.service import Orchestrator
from schemas import codecs
from schemas.accounts import AccountRecord, Limits
from schemas.commands import CheckCommand, LifecycleCommand
from schemas.resources import ResourceSample
from tests.unit.orchestrator.fakes import (
    create_command,
    events,
    lifecycle,
    make,
    signed,
    starts,
)

pytestmark = pytest.mark.unit


@pytest.fixture
def orch(tmp_path: Path) -> Orchestrator:
    return make(tmp_path)


def queued_run(orch: Orchestrator, owner: str = "ana") -> uuid.UUID:
    orch.on_work(codecs.dumps(create_command(owner)))
    return starts(orch)[-1].simulation_id


def last_answer(orch: Orchestrator) -> tuple[str, str]:
    _, status, fields = events(orch)[-1]
    return status, fields.get("message", "")


def state_of(orch: Orchestrator, sid: uuid.UUID) -> str:
    return RunDir(orch.settings.runs_dir, sid).read().state


def test_it_refuses_an_unsigned_command_naming_how_to_sign(orch: Orchestrator) -> None:
    sid = queued_run(orch)
    orch.on_broadcast(codecs.dumps(LifecycleCommand(type="stop", simulation_id=sid)))
    status, message = last_answer(orch)
    assert status == "rejected" and message.startswith("unauthenticated command")
    assert state_of(orch, sid) == "queued"


def test_it_refuses_a_command_for_someone_else_whatever_issued_by_says(
    orch: Orchestrator,
) -> None:
    sid = queued_run(orch, "ana")
    forged = lifecycle("delete", sid, owner="bob", issued_by="ana")
    orch.on_broadcast(codecs.dumps(forged))
    status, message = last_answer(orch)
    assert status == "rejected" and "belongs to another user" in message
    assert state_of(orch, sid) == "queued" and RunDir(orch.settings.runs_dir, sid).exists()


def test_staff_may_act_on_any_run(orch: Orchestrator) -> None:
    sid = queued_run(orch, "ana")
    orch.on_broadcast(codecs.dumps(lifecycle("stop", sid, owner="root")))
    assert state_of(orch, sid) == "stopped"


def test_it_refuses_a_changed_command_and_a_made_up_principal(orch: Orchestrator) -> None:
    sid = queued_run(orch)
    other = queued_run(orch)
    tampered = lifecycle("stop", sid).model_copy(update={"simulation_id": other})
    orch.on_broadcast(codecs.dumps(tampered))
    assert last_answer(orch)[1].startswith("bad signature")
    ghost = lifecycle("stop", sid).model_copy(update={"principal": "user:77"})
    orch.on_broadcast(codecs.dumps(ghost))
    assert last_answer(orch)[1] == "user 77 has no account here"
    assert state_of(orch, sid) == state_of(orch, other) == "queued"


def test_it_refuses_a_replayed_command_as_stale(orch: Orchestrator) -> None:
    sid = queued_run(orch)
    old = lifecycle("stop", sid)
    later = old.issued_at + timedelta(minutes=10)  # when Kafka stored the replay
    orch.on_broadcast(codecs.dumps(old), later)
    status, message = last_answer(orch)
    assert status == "rejected" and message.startswith("stale command")
    assert state_of(orch, sid) == "queued"


def test_a_disabled_account_or_a_revoked_key_acts_no_more(orch: Orchestrator) -> None:
    sid = queued_run(orch)
    revoked = AccountRecord(user_id=1, username="ana", key_generation=1)
    orch.accounts.apply(revoked.model_dump_json().encode())
    orch.on_broadcast(codecs.dumps(lifecycle("stop", sid)))
    assert "was revoked" in last_answer(orch)[1]
    disabled = AccountRecord(user_id=1, username="ana", is_active=False)
    orch.accounts.apply(disabled.model_dump_json().encode())
    orch.on_broadcast(codecs.dumps(lifecycle("stop", sid)))
    assert last_answer(orch)[1] == "account 'ana' is disabled"
    assert state_of(orch, sid) == "queued"


def test_runs_belong_to_the_signer_by_id_not_to_issued_by(orch: Orchestrator) -> None:
    cmd = signed(create_command().model_copy(update={"issued_by": "root"}), "bob")
    orch.on_work(codecs.dumps(cmd))
    spec = RunDir(orch.settings.runs_dir, starts(orch)[-1].simulation_id).spec()
    assert (spec.owner, spec.owner_id) == ("bob", 2)
    queued = [f for _, s, f in events(orch) if s == "queued"]
    assert {(f["owner"], f["owner_id"]) for f in queued} == {("bob", 2)}


def limit(orch: Orchestrator, **limits: float) -> None:
    record = AccountRecord(user_id=1, username="ana", limits=Limits(**limits))
    orch.accounts.apply(record.model_dump_json().encode())


def test_it_enforces_the_account_limits_on_create(orch: Orchestrator) -> None:
    limit(orch, max_runs_per_experiment=1)
    orch.on_work(codecs.dumps(create_command()))  # two learning rates: two runs
    status, message = last_answer(orch)
    assert status == "rejected" and "max_runs_per_experiment" in message and not starts(orch)
    assert {s for _, s, _ in events(orch)} == {"failed", "rejected"}
    limit(orch, max_queued_runs=3)
    orch.on_work(codecs.dumps(create_command()))
    orch.on_work(codecs.dumps(create_command()))
    assert "max_queued_runs" in last_answer(orch)[1] and len(starts(orch)) == 2


def test_it_holds_starts_beyond_the_admins_concurrency_limit_with_the_reason(
    tmp_path: Path,
) -> None:
    orch = make(tmp_path, nnt_max_runs=4)
    limit(orch, max_concurrent_runs=1)
    orch.on_work(codecs.dumps(create_command()))
    first, second = starts(orch)
    assert orch.on_work(codecs.dumps(first)) is True
    assert orch.on_work(codecs.dumps(second)) is False
    status, message = last_answer(orch)
    assert status == "queued" and "max_concurrent_runs=1" in message


def create_with(orch: Orchestrator, content: bytes, owner: str = "ana") -> Any:
    """A signed create of `owner` whose training set is an upload of `content` (in the store)."""
    name = hashlib.sha256(content).hexdigest() + ".npz"
    (orch.settings.datasets_dir / name).write_bytes(content)
    cmd = create_command(owner)
    cmd.experiment["dataset_train"] = f"stored:{name}"
    return signed(cmd, owner)


def test_it_refuses_a_create_past_the_storage_limit_naming_it_and_the_usage(
    orch: Orchestrator,
) -> None:
    limit(orch, max_storage_bytes=150)
    first = create_with(orch, b"1" * 100)
    orch.on_work(codecs.dumps(first))
    assert last_answer(orch) == ("accepted", "2 simulation(s) queued")
    orch.on_work(codecs.dumps(create_with(orch, b"2" * 100)))
    status, message = last_answer(orch)
    assert status == "rejected" and len(starts(orch)) == 2
    assert "max_storage_bytes" in message and "100 B stored now plus 100 B new" in message
    assert "delete old experiments" in message
    assert events(orch)[-1][2]["errors"] == {"__all__": message}
    assert [f["message"] for _, s, f in events(orch) if s == "failed"] == [message, message]
    again = create_with(orch, b"1" * 100)  # the same upload again: it takes no more room
    orch.on_work(codecs.dumps(again))
    assert last_answer(orch)[0] == "accepted" and len(starts(orch)) == 4
    for start in starts(orch):  # delete every run: the file is freed, the room comes back
        orch.on_broadcast(codecs.dumps(lifecycle("delete", start.simulation_id)))
    orch.on_work(codecs.dumps(create_with(orch, b"2" * 100)))
    assert last_answer(orch)[0] == "accepted"


def test_it_refuses_a_check_past_the_storage_limit_for_the_web_to_show(
    orch: Orchestrator,
) -> None:
    orch.on_work(codecs.dumps(create_with(orch, b"1" * 100)))
    limit(orch, max_storage_bytes=150)
    create = create_with(orch, b"2" * 100)
    orch.on_work(codecs.dumps(signed(CheckCommand(experiment_id=create.experiment_id,
                                                  experiment=create.experiment))))  # fmt: skip
    _, status, fields = events(orch)[-1]
    assert status == "rejected" and "max_storage_bytes" in fields["errors"]["__all__"]


def test_it_counts_a_downloaded_dataset_against_storage_and_drops_it_when_refused(
    orch: Orchestrator, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = orch.settings.datasets_dir
    download = store / (hashlib.sha256(b"u" * 300).hexdigest() + ".csv")

    def fetched(url: str, store_dir: Path, *args: Any) -> Path:  # the download, without a server
        download.write_bytes(b"u" * 300)
        return download

    monkeypatch.setattr(experiments.fetch, "fetch", fetched)
    limit(orch, max_storage_bytes=200)
    cmd = create_command()
    cmd.experiment["dataset_train"] = "https://example.org/big.csv"
    deferred = orch.on_work(codecs.dumps(signed(cmd)))
    assert isinstance(deferred, Deferred)
    deferred.finish(deferred.run())
    status, message = last_answer(orch)
    assert status == "rejected" and "300 B new" in message and "max_storage_bytes" in message
    assert not starts(orch) and not download.exists(), "the refused download is not kept"


def test_it_gives_each_run_the_owners_per_run_memory_and_cpus(tmp_path: Path) -> None:
    mib = 1024**2
    orch = make(tmp_path, nnt_max_runs=4, nnt_run_memory_bytes=1024 * mib, nnt_run_cpus=2)
    limit(orch, max_run_memory_bytes=256 * mib, max_run_cpus=0.5, max_memory_bytes=600 * mib)
    orch.on_work(codecs.dumps(create_command()))
    orch.on_work(codecs.dumps(create_command()))
    first, second, third, _ = starts(orch)
    assert orch.on_work(codecs.dumps(first)) is True, "1 GiB a run would never fit 600 MiB"
    spec = RunDir(orch.settings.runs_dir, first.simulation_id).spec()  # what the runtime reads
    assert (spec.memory_bytes, spec.cpus) == (256 * mib, 0.5)
    assert orch.on_work(codecs.dumps(second)) is True
    assert orch.on_work(codecs.dumps(third)) is False
    status, message = last_answer(orch)
    assert status == "queued" and f"would use {768 * mib} bytes" in message
    assert "max_memory_bytes" in message
    over = ResourceSample(simulation_id=first.simulation_id, cpu_percent=1,
                          memory_bytes=300 * mib)  # fmt: skip
    assert "max_run_memory_bytes" in (orch.watch.check(first.simulation_id, over) or "")
    orch.on_work(codecs.dumps(create_command("bob")))  # no per-run limits: the host's
    bob = starts(orch)[-2]
    orch.on_work(codecs.dumps(bob))
    spec = RunDir(orch.settings.runs_dir, bob.simulation_id).spec()
    assert (spec.memory_bytes, spec.cpus) == (1024 * mib, 2)
