"""The orchestrator is SIGKILLed while a run trains, then started again: it re-adopts the same
trainer process, which ends `finished` with exactly its epochs, each stored once. Killed again
once training is over (the trainer reporting `finished`), the restarted one does not announce
the run `running` again."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid
from pathlib import Path

import psutil
import pytest

from tests.integration.faults.conftest import (
    Orchestrator,
    Service,
    loss_epochs,
    run_dir,
    simulation,
    status_history,
    submit,
)  # fmt: skip
from tests.integration.orchestrator.conftest import until

pytestmark = pytest.mark.integration
EPOCHS = 24


def checkpointed(directory: Path) -> int:
    """Epoch of the run's latest checkpoint (0 while none, or while it is being replaced)."""
    try:
        return int(json.loads((directory / "checkpoints" / "latest.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0


def freeze_when_trained(directory: Path, pid: int, timeout: float = 180) -> None:
    """SIGSTOP the trainer the moment its last epoch is checkpointed (evaluating, reporting)."""
    deadline = time.monotonic() + timeout
    while checkpointed(directory) < EPOCHS:
        assert time.monotonic() < deadline, "training did not end"
        time.sleep(0.005)
    os.kill(pid, signal.SIGSTOP)


def announcements(url: str, sid: uuid.UUID) -> int:
    """How many times an orchestrator announced it re-adopted the run."""
    return sum(1 for s, m in status_history(url, sid) if s == "running" and "re-adopted" in m)


def test_it_readopts_a_run_after_the_orchestrator_is_killed_and_finishes_it(
    orchestrator: Orchestrator, database: Service
) -> None:
    url = database.address
    sid = submit(orchestrator, EPOCHS)
    directory = run_dir(orchestrator, sid)
    until(lambda: len(loss_epochs(url, sid)) >= 2, 180, "two epochs stored", orchestrator)
    trainer = json.loads((directory / "state.json").read_text())["pid"]

    assert orchestrator.sigkill() == -signal.SIGKILL
    assert psutil.pid_exists(trainer), "the trainer outlives its orchestrator"
    orchestrator.start()  # same host name: the run is its own
    until(lambda: announcements(url, sid) == 1, 60, "the re-adoption announced", orchestrator)
    stored_at_adoption = len(loss_epochs(url, sid))

    # Killed again when training is over: the trainer reports (or has reported) `finished`
    # itself; the next orchestrator must not announce the run `running` after that.
    freeze_when_trained(directory, trainer)
    try:
        orchestrator.sigkill()
        orchestrator.start()
        time.sleep(2)  # its reconcile is done: an announcement would be on its way now
    finally:
        os.kill(trainer, signal.SIGCONT)
    row = until(lambda: (r := simulation(url, sid)) and r["status"] in ("finished", "failed") and r,
                240, "a final status", orchestrator)  # fmt: skip
    state_file = directory / "state.json"
    until(lambda: json.loads(state_file.read_text())["state"] != "running", 60,
          "the orchestrator to see the adopted trainer end", orchestrator)  # fmt: skip
    time.sleep(2)  # a late `running` would land now

    assert stored_at_adoption < EPOCHS, "re-adopted while it was still training"
    assert simulation(url, sid) == row and row["status"] == "finished", row
    assert (row["epoch"], row["total_epochs"]) == (EPOCHS, EPOCHS)
    assert loss_epochs(url, sid) == list(range(1, EPOCHS + 1)), "each epoch stored once"
    state = json.loads(state_file.read_text())
    assert state["state"] == "finished" and state["pid"] == trainer, "the same trainer finished"
    statuses = [s for s, _ in status_history(url, sid)]
    assert statuses.count("starting") == 1 and "failed" not in statuses, statuses
    assert announcements(url, sid) == 1, "no `running` announced once training was over"
