"""The process runtime end to end: lifecycle through Kafka commands (ours and kcat's)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from schemas import topics
from schemas.commands import CreateCommand
from schemas.experiment import simulation_id
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    epochs_of,
    kcat,
    kcat_signed,
    skip_history,
    until,
)  # fmt: skip

EPOCHS = 15


@pytest.fixture
def orch(home: Path, kafka_bootstrap: str) -> Iterator[Orch]:
    group = f"test-{uuid.uuid4()}"
    skip_history(kafka_bootstrap, group, "proc-host")  # earlier tests' commands stay theirs
    running = Orch(home, kafka_bootstrap, "proc-host", group, NNT_MAX_RUNS="2").start()
    yield running
    running.kill()


def state_of(home: Path, sid: uuid.UUID) -> dict:
    return json.loads((home / "runs" / str(sid) / "state.json").read_text())


def test_it_pauses_resumes_stops_resumes_and_deletes_a_process(
    orch: Orch, home: Path, client: Client, kafka_bootstrap: str, status_tap: Tap, epoch_tap: Tap
) -> None:
    resources = Tap(kafka_bootstrap, topics.RESOURCES)
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                           experiment=demo_experiment(home, EPOCHS, batch_size=4))  # fmt: skip
    client.send(create)
    sid = simulation_id(create.experiment_id, 0)
    queued = until(lambda: status_tap.status(sid, "queued"), 60, "queued", orch)
    assert queued["name"].startswith("digits-demo") and queued["owner"] == "ana"
    until(lambda: len(epochs_of(epoch_tap, sid)) >= 2, 120, "two epochs", orch)

    # Unsigned JSON from kcat is refused, naming why; the run goes on.
    forged = str(uuid.uuid4())
    kcat(kafka_bootstrap, str(sid), json.dumps(
        {"type": "pause", "command_id": forged, "simulation_id": str(sid), "issued_by": "ana"}))  # fmt: skip
    refused = until(lambda: status_tap.answer(forged), 60, "kcat unsigned pause answered", orch)
    assert refused["status"] == "rejected" and "unauthenticated" in refused["message"]
    # Signed as docs/examples/kcat-command.sh does it (openssl + kcat), it pauses the run.
    pause = kcat_signed(kafka_bootstrap, "pause", sid, "ana")
    until(lambda: status_tap.status(sid, "paused", command_id=pause), 60, "paused", orch)
    pid = state_of(home, sid)["pid"]
    assert psutil.Process(pid).status() == psutil.STATUS_STOPPED

    client.lifecycle("resume", sid)
    until(lambda: status_tap.status(sid, "running", message="resumed by"), 60, "resumed", orch)
    assert psutil.Process(pid).status() != psutil.STATUS_STOPPED
    client.lifecycle("stop", sid)
    stopped = until(lambda: status_tap.status(sid, "stopped", "orchestrator"), 90, "stopped", orch)
    assert "stopped by ana" in stopped["message"] and stopped["epoch"] < EPOCHS
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE

    client.lifecycle("resume", sid)
    until(lambda: status_tap.status(sid, "finished", "trainer"), 180, "finished", orch)
    epochs = until(lambda: epochs_of(epoch_tap, sid) if len(epochs_of(epoch_tap, sid)) >= EPOCHS else None,
                   30, "every epoch event")  # fmt: skip
    assert sorted(epochs) == list(range(1, EPOCHS + 1)), "a resumed run repeats or skips nothing"
    samples = [s for s in resources.poll() if s["simulation_id"] == str(sid)]
    assert samples and all(s["memory_bytes"] > 0 and s.get("gpu_percent") is None for s in samples)
    resources.close()

    datasets = sorted((home / "datasets").glob("*.npz"))
    client.lifecycle("delete", sid)
    until(lambda: status_tap.status(sid, "deleted"), 60, "deleted", orch)
    assert not (home / "runs" / str(sid)).exists()
    assert datasets and not any(p.exists() for p in datasets), "unreferenced datasets are removed"


def test_it_deletes_a_running_process_with_all_it_had(
    orch: Orch, home: Path, client: Client, status_tap: Tap, epoch_tap: Tap
) -> None:
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                           experiment=demo_experiment(home, 200, batch_size=4))  # fmt: skip
    client.send(create)
    sid = simulation_id(create.experiment_id, 0)
    until(lambda: epochs_of(epoch_tap, sid), 120, "a first epoch", orch)
    trainer = psutil.Process(state_of(home, sid)["pid"])
    tree = [trainer, *trainer.children(recursive=True)]
    assert trainer.status() != psutil.STATUS_ZOMBIE, "it is running when the delete comes"

    client.lifecycle("delete", sid)
    until(lambda: status_tap.status(sid, "deleted"), 60, "deleted", orch)
    assert not any(p.is_running() for p in tree), "no process of the run is left"
    assert not (home / "runs" / str(sid)).exists()


def test_it_answers_every_kcat_command_with_a_reason(
    orch: Orch, kafka_bootstrap: str, status_tap: Tap
) -> None:
    stray = uuid.uuid4()
    cid = kcat_signed(kafka_bootstrap, "stop", stray, "ana")
    answer = until(lambda: status_tap.answer(cid), 60, "an answer to kcat's stop", orch)
    assert answer["status"] == "rejected" and "not known" in answer["message"]
    kcat(kafka_bootstrap, "junk", '{"type": "explode", "simulation_id": 3}')
    until(lambda: [e for e in status_tap.poll() if e["status"] == "rejected"
                   and "invalid command" in e.get("message", "")], 60, "garbage rejected", orch)  # fmt: skip
    assert orch.proc is not None and orch.proc.poll() is None, "garbage does not kill it"


def test_it_fails_a_simulation_whose_dataset_url_is_refused(
    orch: Orch, home: Path, client: Client, status_tap: Tap
) -> None:
    experiment = demo_experiment(home, 1)
    experiment["dataset_train"] = "http://169.254.169.254/latest/meta-data.npz"
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana", experiment=experiment)
    client.send(create)
    sid = simulation_id(create.experiment_id, 0)
    failed = until(lambda: status_tap.status(sid, "failed"), 60, "failed", orch)
    assert "169.254.169.254" in failed["message"] and "metadata" in failed["message"]
