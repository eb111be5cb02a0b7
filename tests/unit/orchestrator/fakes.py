"""Stand-ins for the orchestrator's unit tests: a publisher that records, a runtime that idles."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from orchestrator.runtime import Handle, Runtime
from orchestrator.service import Orchestrator
from orchestrator.settings import OrchestratorSettings
from schemas import auth
from schemas.accounts import AccountRecord
from schemas.commands import CreateCommand, LifecycleCommand
from schemas.run import RunSpec

STORED = "a" * 64 + ".npz"
SECRET = "unit-test-secret"
SERVICE_KEY = auth.service_key(SECRET, "orchestrator")
# The accounts every unit orchestrator knows (as read from nnt.accounts): id by name.
USERS = {"ana": 1, "bob": 2, "root": 9}


class RecordingPublisher:
    """Collects what the orchestrator sends instead of sending it (pure-logic unit test)."""

    def __init__(self) -> None:
        self.events: list[tuple[Any, str, dict[str, Any]]] = []
        self.commands: list[LifecycleCommand] = []

    def status(self, simulation_id: Any, status: str, **fields: Any) -> None:
        self.events.append((simulation_id, status, fields))

    def resources(self, sample: Any) -> None:
        pass

    def command(self, command: LifecycleCommand) -> None:
        # Signed as StatusPublisher signs it, so a test can hand it back to an orchestrator.
        self.commands.append(command.signed("service:orchestrator", SERVICE_KEY))

    def flush(self, timeout: float = 10.0) -> None:
        pass


class IdleRuntime:
    """Starts nothing; remembers what it was asked."""

    name = "process"

    def __init__(self) -> None:
        self.calls: list[str] = []

    def start(self, spec: RunSpec, run_dir: Path) -> Handle:
        self.calls.append(f"start {spec.simulation_id}")
        return Handle(spec.simulation_id, run_dir, pid=1)

    def exit_code(self, handle: Handle) -> int | None:
        return None

    def sample(self, handle: Handle) -> None:
        return None

    def pause(self, handle: Handle) -> None:
        self.calls.append("pause")

    def unpause(self, handle: Handle) -> None:
        self.calls.append("unpause")

    def stop(self, handle: Handle) -> None:
        self.calls.append("stop")

    def kill(self, handle: Handle) -> None:
        self.calls.append("kill")

    def adopt(self, *args: Any) -> None:
        return None

    def orphans(self, known: set[uuid.UUID]) -> list[str]:
        return []


def settings_of(tmp_path: Path, **settings: Any) -> OrchestratorSettings:
    """Settings of one host "h1" under `tmp_path`, with the stored dataset in place."""
    (tmp_path / "datasets").mkdir(exist_ok=True)
    (tmp_path / "datasets" / STORED).write_bytes(b"x")
    # The pre-flight has its own tests (test_orchestrator_preflight.py); the command logic's
    # tests create runs at once.
    # No DATABASE_URL: the record in files under `tmp_path`, whatever the environment says
    # (the web's tests export theirs); tests/integration/store runs these on a database.
    defaults = {
        "nnt_max_runs": 1, "nnt_hostname": "h1", "nnt_preflight": False,
        "nnt_command_secret": SECRET, "database_url": None,
    }  # fmt: skip
    return OrchestratorSettings(nnt_home=tmp_path, **{**defaults, **settings})


def make(
    tmp_path: Path, runtime: Runtime | None = None, publisher: Any = None, **settings: Any
) -> Orchestrator:
    """An orchestrator on `tmp_path` (an idle runtime and a recording publisher by default)
    that knows the accounts in USERS (root is staff)."""
    orch = Orchestrator(
        settings_of(tmp_path, **settings),
        runtime or IdleRuntime(),  # type: ignore[arg-type]
        publisher or RecordingPublisher(),
    )
    for name, user_id in USERS.items():
        record = AccountRecord(user_id=user_id, username=name, is_staff=name == "root")
        orch.accounts.apply(record.model_dump_json().encode())
    return orch


def signed(command: Any, owner: str = "ana") -> Any:
    """`command` signed with the command key of account `owner` (generation 0)."""
    key = auth.user_key(SECRET, USERS[owner], 0)
    return command.signed(f"user:{USERS[owner]}", key)


def lifecycle(kind: str, sid: uuid.UUID, owner: str = "ana", **fields: Any) -> LifecycleCommand:
    """A signed pause/resume/stop/delete/start of `owner`."""
    return signed(LifecycleCommand(type=kind, simulation_id=sid, **fields), owner)  # type: ignore[arg-type]


def create_command(owner: str = "ana") -> CreateCommand:
    """A signed `create` of `owner`: two learning rates, so two simulations."""
    return signed(CreateCommand(experiment_id=uuid.uuid4(), issued_by=owner, experiment={
        "name": "exp", "dataset_train": "stored:" + STORED, "learning_rates": [0.1, 0.01],
        "model": {"class_name": "Sequential", "config": {"layers": []}},
    }), owner)  # fmt: skip


def events(orch: Orchestrator) -> list[tuple[Any, str, dict[str, Any]]]:
    return orch.publisher.events  # type: ignore[attr-defined, no-any-return]


def starts(orch: Orchestrator) -> list[LifecycleCommand]:
    return orch.publisher.commands  # type: ignore[attr-defined, no-any-return]
