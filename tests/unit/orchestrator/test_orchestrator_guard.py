"""Commands are acted on only for who they prove to be: a forged, unsigned, stale or foreign
command is refused with a reason and leaves the run untouched; account limits are enforced."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from orchestrator.rundirs import RunDir
from orchestrator.service import Orchestrator
from schemas import codecs
from schemas.accounts import AccountRecord, Limits
from schemas.commands import LifecycleCommand
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


def limit(orch: Orchestrator, **limits: int) -> None:
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
