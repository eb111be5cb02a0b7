"""A trainer is SIGKILLed the moment it checkpoints an epoch: the orchestrator reports the run
`failed`, saying so and naming the last good epoch (never leaves it `running`), and a resume
continues from that checkpoint to `finished` with every epoch stored, none lost."""

from __future__ import annotations

import collections
import json
import os
import signal
import time

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
from tests.integration.faults.test_faults_orchestrator import checkpointed
from tests.integration.orchestrator.conftest import Client, until

pytestmark = pytest.mark.integration
EPOCHS = 16
KILL_AFTER = 3


def test_it_fails_a_killed_trainer_truthfully_and_resumes_it_to_the_end(
    orchestrator: Orchestrator, database: Service, kafka_bootstrap: str
) -> None:
    url = database.address
    sid = submit(orchestrator, EPOCHS)
    directory = run_dir(orchestrator, sid)
    deadline = time.monotonic() + 180
    while checkpointed(directory) < KILL_AFTER:  # kill right as it saves a checkpoint
        assert time.monotonic() < deadline, "no checkpoint\n" + orchestrator.log_tail()
        time.sleep(0.005)
    trainer = json.loads((directory / "state.json").read_text())["pid"]
    os.kill(trainer, signal.SIGKILL)
    good = checkpointed(directory)

    failed = until(lambda: (r := simulation(url, sid)) and r["status"] == "failed" and r, 60,
                   "the run reported failed", orchestrator)  # fmt: skip
    assert "trainer process killed by signal 9 (SIGKILL)" in failed["message"], failed
    assert f"last good epoch {good}" in failed["message"], failed
    assert failed["epoch"] == good

    Client(kafka_bootstrap).lifecycle("resume", sid)
    row = until(lambda: (r := simulation(url, sid)) and r["status"] == "finished" and r, 240,
                "the resumed run finished", orchestrator)  # fmt: skip
    assert (row["epoch"], row["total_epochs"]) == (EPOCHS, EPOCHS)
    stored = loss_epochs(url, sid)
    assert sorted(set(stored)) == list(range(1, EPOCHS + 1)), "every epoch is stored"
    again = [e for e, n in collections.Counter(stored).items() if n > 1]
    # Only the epoch the kill interrupted can have been published before it died; the resume
    # trains it again (the chart shows its newest value).
    assert again in ([], [good + 1]), stored
    statuses = [s for s, _ in status_history(url, sid)]
    assert statuses.index("failed") < statuses.index("finished") and statuses[-1] == "finished"
    until(lambda: json.loads((directory / "state.json").read_text())["state"] == "finished", 60,
          "the orchestrator to record the end", orchestrator)  # fmt: skip
