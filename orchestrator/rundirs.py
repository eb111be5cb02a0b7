"""Run directories, and the run record kept in them when no database is shared (`Runs`).

`$NNT_HOME/runs/<simulation id>/` holds `run.json` (the spec), `state.json` (lifecycle state,
the host that owns it while active, its pid or container) and the trainer's checkpoints. All
orchestrators of one NNT_HOME read the same directories; a lock file serialises transitions.
Orchestrators on hosts without a shared NNT_HOME keep the record in PostgreSQL instead
(`orchestrator/shared.py`); the run directory is then the local working copy.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from orchestrator import datastore
from orchestrator.settings import OrchestratorSettings
from schemas import storage
from schemas.run import RUN_SPEC_FILE, RunSpec

STATE_FILE = "state.json"
ACTIVE = frozenset({"starting", "running", "paused"})
MAX_STARTS = 20
DONE = ".done"


@dataclass
class RunState:
    """What `state.json` records."""

    state: str = "queued"
    host: str | None = None
    runtime: str | None = None
    pid: int | None = None
    container: str | None = None
    message: str = ""
    reason: str = ""
    starts: list[str] = field(default_factory=list)  # ids of the `start` commands handled
    checkpoint_epoch: int = 0  # epochs of the checkpoint every host can reach (shared record)
    at: float = field(default_factory=time.time)

    def owned_by(self, host: str) -> bool:
        """True while `host` runs (or freezes) this simulation."""
        return self.state in ACTIVE and self.host == host

    def handled(self, command_id: uuid.UUID) -> None:
        """Record a `start` as done: its redelivery is then ignored, by any orchestrator."""
        self.starts = [*self.starts, str(command_id)][-MAX_STARTS:]


class RunDir:
    """One simulation's directory."""

    def __init__(self, runs_dir: Path, simulation_id: uuid.UUID) -> None:
        self.simulation_id = simulation_id
        self.path = runs_dir / str(simulation_id)

    def exists(self) -> bool:
        """True when the spec has been written."""
        return (self.path / RUN_SPEC_FILE).is_file()

    def spec(self) -> RunSpec:
        """The run specification."""
        return RunSpec.model_validate_json((self.path / RUN_SPEC_FILE).read_text())

    def write_spec(self, spec: RunSpec) -> None:
        """Replace `run.json` atomically (a reader never sees half of it)."""
        tmp = self.path / f".{RUN_SPEC_FILE}.{os.getpid()}"
        tmp.write_text(spec.model_dump_json(indent=1))
        os.replace(tmp, self.path / RUN_SPEC_FILE)

    def read(self) -> RunState:
        """The recorded state (queued when none was written yet)."""
        try:
            data = json.loads((self.path / STATE_FILE).read_text())
            return RunState(**{k: v for k, v in data.items() if k in RunState.__dataclass_fields__})
        except (OSError, ValueError, TypeError):
            return RunState()

    def write(self, state: RunState) -> None:
        """Replace `state.json` atomically."""
        state.at = time.time()
        tmp = self.path / f".{STATE_FILE}.{os.getpid()}"
        tmp.write_text(json.dumps(asdict(state)))
        os.replace(tmp, self.path / STATE_FILE)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the directory's lock (every orchestrator of this NNT_HOME honours it)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / ".lock").open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)


def checkpoint_epoch(run_dir: Path) -> int:
    """Epochs held by the run's latest checkpoint (0 when none)."""
    try:
        return int(json.loads((run_dir / "checkpoints" / "latest.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def claim(claims_dir: Path, command_id: uuid.UUID, host: str) -> bool:
    """True for exactly one orchestrator per command id (an O_EXCL file naming its host).

    The claimer gets True again: if it died before finishing, the redelivered command is
    its to finish (every other host keeps getting False).
    """
    claims_dir.mkdir(parents=True, exist_ok=True)
    path = claims_dir / str(command_id)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        try:
            return path.read_text() == host
        except OSError:
            return False
    with os.fdopen(fd, "w") as fh:
        fh.write(host)
    return True


def mark_done(claims_dir: Path, command_id: uuid.UUID) -> None:
    """Record, for every orchestrator, that a shared-group command's work is complete."""
    claims_dir.mkdir(parents=True, exist_ok=True)
    (claims_dir / f"{command_id}{DONE}").touch()


def is_done(claims_dir: Path, command_id: uuid.UUID) -> bool:
    """True once `mark_done` ran for this id (on any host)."""
    return (claims_dir / f"{command_id}{DONE}").exists()


def prune_claims(claims_dir: Path, older_than_s: float = 7 * 86400) -> None:
    """Forget claims and done marks of commands older than a week."""
    cutoff = time.time() - older_than_s
    for path in claims_dir.glob("*") if claims_dir.is_dir() else []:
        with contextlib.suppress(OSError):
            if path.stat().st_mtime < cutoff:
                path.unlink()


def all_runs(runs_dir: Path) -> Iterator[RunDir]:
    """Every run directory with a spec."""
    for path in sorted(runs_dir.glob(f"*/{RUN_SPEC_FILE}")) if runs_dir.is_dir() else []:
        with contextlib.suppress(ValueError):
            yield RunDir(runs_dir, uuid.UUID(path.parent.name))


class Runs:
    """The run record in NNT_HOME: one host, or hosts that share that folder (NFS)."""

    shared = False

    def __init__(self, settings: OrchestratorSettings) -> None:
        self.settings = settings
        self.host = settings.nnt_hostname

    def dir(self, simulation_id: uuid.UUID) -> RunDir:
        """One simulation's record."""
        return RunDir(self.settings.runs_dir, simulation_id)

    def all(self) -> Iterator[RunDir]:
        """Every recorded simulation."""
        return all_runs(self.settings.runs_dir)

    def active(self) -> Iterator[RunDir]:
        """Simulations starting, running or paused, on any host."""
        return (rd for rd in self.all() if rd.read().state in ACTIVE)

    def mine(self) -> Iterator[RunDir]:
        """Simulations this host runs (or freezes)."""
        return (rd for rd in self.all() if rd.read().owned_by(self.host))

    def claim(self, command_id: uuid.UUID) -> bool:
        """True for exactly one orchestrator per command id (see `claim`)."""
        return claim(self.settings.claims_dir, command_id, self.host)

    def mark_done(self, command_id: uuid.UUID) -> None:
        """Record that a shared-group command's work is complete."""
        mark_done(self.settings.claims_dir, command_id)

    def is_done(self, command_id: uuid.UUID) -> bool:
        """True once the command's work is complete (on any host)."""
        return is_done(self.settings.claims_dir, command_id)

    def prune(self) -> None:
        """Forget week-old claims."""
        prune_claims(self.settings.claims_dir)

    def record(self, rd: RunDir, spec: RunSpec) -> None:
        """A new simulation's spec is recorded (here: its run.json, already written)."""

    def prepare(self, rd: RunDir, spec: RunSpec) -> RunSpec:
        """The run directory ready for a start on this host (here: it is already)."""
        return spec

    def checkpoint_epoch(self, rd: RunDir, state: RunState) -> int:
        """Epochs of the newest checkpoint any host could resume from."""
        return max(checkpoint_epoch(rd.path), state.checkpoint_epoch)

    def keep_checkpoint(self, rd: RunDir) -> None:
        """Make the run's newest checkpoint reachable from every host (here: it is)."""

    def forget(self, rd: RunDir) -> None:
        """Delete the simulation's record and its directory."""
        shutil.rmtree(rd.path, ignore_errors=True)

    def datasets_in_use(self) -> set[str]:
        """Dataset paths some recorded simulation still needs."""
        return datastore.referenced(self.settings.runs_dir)

    def held(self, owner_id: int) -> dict[str, int]:
        """Dataset files the account's runs hold: path -> bytes (schemas/storage.py)."""
        return storage.held(self.settings.runs_dir, owner_id)

    def drop_dataset(self, name: str) -> None:
        """A dataset no simulation needs any more is gone from every store (here: the file)."""

    def dataset(self, path: Path) -> bool:
        """True when the stored dataset at `path` is on this host (here: only if it is)."""
        return path.is_file()

    def share_dataset(self, path: Path) -> None:
        """Make a stored dataset reachable from every host (here: it is)."""

    def beat(self) -> None:
        """Tell the other hosts this one is alive (here: nobody asks)."""

    def lost(self) -> list[tuple[uuid.UUID, str, float]]:
        """Active runs of hosts that stopped answering (here: never known)."""
        return []
