"""The run record in PostgreSQL, for orchestrators on hosts that share no filesystem.

Every orchestrator reads and writes the same rows (store/runs.py): a run's spec and lifecycle
state, one claim per command, a lease per host. What a run needs on whichever host starts it
travels through the database too (store/blobs.py): its datasets, named by their SHA-256, and
its newest checkpoint, uploaded as soon as the trainer writes it. The run directory under this
host's NNT_HOME is the working copy: written before a start, deleted with the run.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import tarfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path

from orchestrator.rundirs import ACTIVE, RunDir, Runs, RunState, checkpoint_epoch
from orchestrator.settings import OrchestratorSettings
from schemas.run import RunSpec
from store import datasets
from store.blobs import Blobs
from store.database import Database
from store.runs import RunRecords

log = logging.getLogger(__name__)
CHECKPOINTS = "checkpoints"


def checkpoint_blob(simulation_id: uuid.UUID) -> str:
    """The blob holding a run's newest checkpoint."""
    return f"checkpoint/{simulation_id}"


class RecordDir(RunDir):
    """A simulation whose record is a database row; `path` is this host's working copy."""

    def __init__(self, runs: SharedRuns, simulation_id: uuid.UUID) -> None:
        super().__init__(runs.settings.runs_dir, simulation_id)
        self.runs = runs
        self.records = runs.records

    def exists(self) -> bool:
        """True when the simulation is recorded."""
        return self.records.spec(self.simulation_id) is not None

    def spec(self) -> RunSpec:
        """The recorded spec, its datasets at their place in this host's store."""
        raw = self.records.spec(self.simulation_id)
        if raw is None:
            raise FileNotFoundError(f"simulation {self.simulation_id} is not recorded")
        spec = RunSpec.model_validate_json(raw)
        datasets = {
            role: str(self.runs.settings.datasets_dir / Path(path).name) if path else None
            for role, path in spec.datasets.model_dump().items()
        }
        return spec.model_copy(update={"datasets": spec.datasets.model_validate(datasets)})

    def write_spec(self, spec: RunSpec) -> None:
        """Record the spec (and the working copy's run.json, when there is one)."""
        self.records.set_spec(self.simulation_id, spec.model_dump_json())
        if self.path.is_dir():
            super().write_spec(spec)

    def read(self) -> RunState:
        """The recorded state (queued when none)."""
        row = self.records.state(self.simulation_id)
        if row is None:
            return RunState()
        known = {f.name for f in fields(RunState)}
        return RunState(**{k: v for k, v in row.items() if k in known})

    def write(self, state: RunState) -> None:
        """Record the state."""
        self.records.set_state(self.simulation_id, asdict(state))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the row: one orchestrator decides for this run at a time, on any host."""
        with self.records.lock(self.simulation_id):
            yield


class SharedRuns(Runs):
    """Runs, claims, leases, datasets and checkpoints in the database every host reaches."""

    shared = True

    def __init__(self, settings: OrchestratorSettings, url: str) -> None:
        super().__init__(settings)
        self.db = Database(url)
        self.records = RunRecords(self.db)
        # Its own connection: a dataset copied on a fetch thread does not hold up decisions.
        self.blobs = Blobs(Database(url))
        self.records.ensure()

    def dir(self, simulation_id: uuid.UUID) -> RecordDir:
        """One simulation's record."""
        return RecordDir(self, simulation_id)

    def all(self) -> Iterator[RunDir]:
        """Every recorded simulation."""
        return (self.dir(sid) for sid in self.records.ids())

    def active(self) -> Iterator[RunDir]:
        """Simulations starting, running or paused, on any host."""
        return (self.dir(sid) for sid in self.records.ids(states=ACTIVE))

    def mine(self) -> Iterator[RunDir]:
        """Simulations this host runs (or freezes)."""
        return (self.dir(sid) for sid in self.records.ids(host=self.host, states=ACTIVE))

    def claim(self, command_id: uuid.UUID) -> bool:
        """True for exactly one orchestrator per command id (and again for it)."""
        return self.records.claim(command_id, self.host)

    def mark_done(self, command_id: uuid.UUID) -> None:
        """Record that a shared-group command's work is complete."""
        self.records.mark_done(command_id, self.host)

    def is_done(self, command_id: uuid.UUID) -> bool:
        """True once the command's work is complete (on any host)."""
        return self.records.is_done(command_id)

    def prune(self) -> None:
        """Forget week-old claims."""
        self.records.prune_claims()

    def record(self, rd: RunDir, spec: RunSpec) -> None:
        """Record a new simulation and put its datasets where every host reaches them."""
        for path in dict.fromkeys(p for p in spec.datasets.model_dump().values() if p):
            self.share_dataset(Path(path))
        self.records.add(spec.simulation_id, spec.model_dump_json())

    def prepare(self, rd: RunDir, spec: RunSpec) -> RunSpec:
        """This host's working copy: run.json, the datasets and the newest checkpoint."""
        rd.path.mkdir(parents=True, exist_ok=True)
        for path in dict.fromkeys(p for p in spec.datasets.model_dump().values() if p):
            if not self.dataset(Path(path)):
                raise FileNotFoundError(
                    f"dataset {Path(path).name} is in no store; upload it again"
                )
        state = rd.read()
        if state.checkpoint_epoch > checkpoint_epoch(rd.path):
            self._restore_checkpoint(rd)
        RunDir.write_spec(rd, spec)
        return spec

    def keep_checkpoint(self, rd: RunDir) -> None:
        """Upload the trainer's newest checkpoint when it is newer than the recorded one."""
        epoch = checkpoint_epoch(rd.path)
        if epoch <= self.records.checkpoint_epoch(rd.simulation_id):
            return
        root = rd.path / CHECKPOINTS
        latest = json.loads((root / "latest.json").read_text())
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            tar.add(root / latest["path"], arcname=latest["path"])
            tar.add(root / "latest.json", arcname="latest.json")
        self.blobs.put_bytes(checkpoint_blob(rd.simulation_id), buffer.getvalue())
        self.records.set_state(rd.simulation_id, {"checkpoint_epoch": epoch})
        log.info("simulation %s: checkpoint of epoch %d kept in the database",
                 rd.simulation_id, epoch)  # fmt: skip

    def _restore_checkpoint(self, rd: RunDir) -> None:
        data = self.blobs.get_bytes(checkpoint_blob(rd.simulation_id))
        if data is None:
            return
        root = rd.path / CHECKPOINTS
        root.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data), mode="r") as tar:
            tar.extractall(root, filter="data")
        log.info("simulation %s: checkpoint of epoch %d restored from the database",
                 rd.simulation_id, checkpoint_epoch(rd.path))  # fmt: skip

    def forget(self, rd: RunDir) -> None:
        """Delete the record, the kept checkpoint and this host's working copy."""
        self.records.delete(rd.simulation_id)
        self.blobs.drop(checkpoint_blob(rd.simulation_id))
        super().forget(rd)

    def datasets_in_use(self) -> set[str]:
        """Paths in this host's store of datasets some recorded simulation still needs."""
        root = self.settings.datasets_dir
        return {str((root / name).resolve()) for name in self.records.datasets_in_use()}

    def held(self, owner_id: int) -> dict[str, int]:
        """Dataset files the account's runs hold, on any host: path here -> bytes."""
        return datasets.held(self.db, self.settings.datasets_dir, owner_id)

    def dataset(self, path: Path) -> bool:
        """True once the stored dataset is on this host (copied from the database if needed)."""
        if path.is_file():
            return True
        path.parent.mkdir(parents=True, exist_ok=True)
        if not self.blobs.get(path.name, path):
            return False
        path.chmod(0o640)
        log.info("dataset %s copied from the database", path.name)
        return True

    def share_dataset(self, path: Path) -> None:
        """Put a stored dataset where every host reaches it (once per content)."""
        self.blobs.put(path.name, path)

    def drop_dataset(self, name: str) -> None:
        """Delete a dataset no simulation needs from the database."""
        self.blobs.drop(name)

    def beat(self) -> None:
        """Renew this host's lease."""
        self.records.heartbeat(self.host)

    def lost(self) -> list[tuple[uuid.UUID, str, float]]:
        """Active runs of hosts silent for NNT_HOST_TIMEOUT_SECONDS."""
        return self.records.lost_runs(self.host, self.settings.nnt_host_timeout_seconds)
