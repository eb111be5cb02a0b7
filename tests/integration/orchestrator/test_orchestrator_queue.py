"""The shared group keeps flowing: a start that waits for a slot is held locally without
pausing its partition, and a slow dataset download runs off the poll loop while lifecycle
commands and other experiments are answered. Trainers here are a sleeping stand-in."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from schemas.commands import CreateCommand
from schemas.experiment import simulation_id
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    partition_of,
    skip_history,
    sleeper_python,
    until,
)

BODY = b"\x00" * 4096


class Slow:
    """What the slow server was asked, and the switch that lets it finish."""

    requested = threading.Event()
    release = threading.Event()
    finished = threading.Event()


class Handler(BaseHTTPRequestHandler):
    """/slow.npz: the first bytes at once, then one byte a second until released."""

    def do_GET(self) -> None:  # noqa: N802
        Slow.requested.set()
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY[:16])
        sent = 16
        while not Slow.release.wait(1.0) and sent < 120:
            self.wfile.write(BODY[sent : sent + 1])
            self.wfile.flush()
            sent += 1
        self.wfile.write(BODY[sent:])
        Slow.finished.set()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def slow_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/slow.npz"
    Slow.release.set()
    httpd.shutdown()


@pytest.fixture
def orch(home: Path, kafka_bootstrap: str) -> Iterator[Orch]:
    group = f"test-{uuid.uuid4()}"
    skip_history(kafka_bootstrap, group, "queue-host")
    running = Orch(
        home, kafka_bootstrap, "queue-host", group, NNT_MAX_RUNS="1",
        NNT_TRAINER_PYTHON=sleeper_python(home), NNT_URL_ALLOW_LOOPBACK="true",
        NNT_PREFLIGHT="false",  # the stand-in trainer sleeps; it cannot answer a pre-flight
    ).start()  # fmt: skip
    yield running
    running.kill()


def experiment_in(partition: int, sims: int = 1) -> uuid.UUID:
    """An experiment id whose create and whose `sims` starts all fall in `partition`."""
    while True:
        eid = uuid.uuid4()
        keys = [eid, *(simulation_id(eid, i) for i in range(sims))]
        if all(partition_of(k) == partition for k in keys):
            return eid


def create(home: Path, eid: uuid.UUID, owner: str, rates: int = 1, **extra: str) -> CreateCommand:
    rates_ = [0.001 * (i + 1) for i in range(rates)]
    experiment = demo_experiment(home, 3, learning_rates=rates_, **extra)
    return CreateCommand(experiment_id=eid, issued_by=owner, experiment=experiment)


def test_it_keeps_consuming_a_partition_whose_start_waits_for_a_slot(
    orch: Orch, home: Path, client: Client, status_tap: Tap
) -> None:
    ana = experiment_in(0, sims=2)
    client.send(create(home, ana, "ana", rates=2))
    running, waiting = simulation_id(ana, 0), simulation_id(ana, 1)
    until(lambda: status_tap.status(running, "starting"), 60, "ana's first run started", orch)
    # ana's second start is already in partition 0 (queued before her create was committed)
    bob = experiment_in(0)
    client.send(create(home, bob, "bob"))
    bobs = simulation_id(bob, 0)
    until(lambda: status_tap.status(bobs, "queued", owner="bob"), 30,
          "bob's create handled behind ana's waiting start", orch)  # fmt: skip
    held = until(lambda: status_tap.status(waiting, "queued", message="NNT_MAX_RUNS=1"), 10,
                 "ana's second start answered with the reason it waits", orch)  # fmt: skip
    assert "free slot" in held["message"] and status_tap.status(waiting, "starting") is None

    client.lifecycle("delete", running)  # the slot frees: the oldest held start goes first
    until(lambda: status_tap.status(waiting, "starting"), 30, "ana's held start started", orch)
    assert status_tap.status(bobs, "starting") is None


def test_it_answers_lifecycle_commands_while_a_dataset_downloads(
    orch: Orch, home: Path, client: Client, status_tap: Tap, slow_url: str
) -> None:
    first = uuid.uuid4()
    client.send(create(home, first, "ana"))
    sid = simulation_id(first, 0)
    until(lambda: status_tap.status(sid, "starting"), 60, "a run started", orch)

    slow = experiment_in(3)
    client.send(create(home, slow, "ana", dataset_train=slow_url))
    until(Slow.requested.is_set, 60, "the slow download begun", orch)
    pause = client.lifecycle("pause", sid)
    until(lambda: status_tap.status(sid, "paused", command_id=pause), 20,
          "the pause answered during the download", orch)  # fmt: skip
    other = experiment_in(3)  # same partition as the create that is downloading
    client.send(create(home, other, "bob"))
    until(lambda: status_tap.status(simulation_id(other, 0), "queued"), 20,
          "an experiment behind the download queued", orch)  # fmt: skip
    assert not Slow.finished.is_set(), "all of it happened while the download was in progress"

    Slow.release.set()
    until(lambda: status_tap.status(simulation_id(slow, 0), "queued", owner="ana"), 30,
          "the downloaded experiment queued", orch)  # fmt: skip
