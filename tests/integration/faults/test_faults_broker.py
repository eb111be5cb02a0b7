"""The Kafka broker stops and starts again (same port, same data directory, started by
infra.kafka) while two real trainers stream. One rides it out: it finishes, every epoch it
published is stored exactly once, and its simulation row says `finished`. The other is
SIGKILLed while the broker is away, with events still waiting in its producer: it is reported
`failed` with its last good epoch, and a resume brings it to `finished` with no epoch lost."""

from __future__ import annotations

import collections
import json
import os
import signal
import time
import uuid

import pytest

from schemas import topics
from tests.integration.faults.conftest import (
    Orchestrator,
    Service,
    Stream,
    loss_epochs,
    rows,
    run_dir,
    simulation,
    status_history,
    submit,
)  # fmt: skip
from tests.integration.orchestrator.conftest import Client, Tap, until

pytestmark = pytest.mark.integration
EPOCHS = 20
DOWN_S = 4.0


def published_epochs(bootstrap: str, sid: uuid.UUID) -> list[tuple[int, str]]:
    """(epoch, at) of every epoch event of `sid` in the topic, as any consumer reads them."""
    tap = Tap(bootstrap, topics.EPOCHS, from_start=True)
    try:
        until(lambda: len(tap.of(sid)) >= EPOCHS, 30, "the epoch events in Kafka")
        time.sleep(1)
        return sorted((int(e["epoch"]), e["at"]) for e in tap.of(sid))
    finally:
        tap.close()


def final(url: str, sid: uuid.UUID, orch: Orchestrator, *wanted: str) -> dict:
    """The simulation's row once its status is one of `wanted`."""
    return until(lambda: (r := simulation(url, sid)) and r["status"] in wanted and r, 240,
                 f"{sid} {' or '.join(wanted)}", orch)  # fmt: skip


def test_it_keeps_every_epoch_when_the_broker_restarts_under_streaming_trainers(
    orchestrator: Orchestrator, stream: Stream, broker: Service, database: Service
) -> None:
    url = database.address
    rides, killed = submit(orchestrator, EPOCHS), submit(orchestrator, EPOCHS)
    for sid in (rides, killed):
        until(lambda s=sid: len(loss_epochs(url, s)) >= 3, 180, "three epochs stored", orchestrator)
    broker.running.stop()  # SIGTERM: the broker's controlled shutdown
    stored_at_stop = {sid: len(loss_epochs(url, sid)) for sid in (rides, killed)}
    time.sleep(DOWN_S)  # both trainers finish an epoch meanwhile; its events cannot leave
    victim = json.loads((run_dir(orchestrator, killed) / "state.json").read_text())["pid"]
    os.kill(victim, signal.SIGKILL)
    broker.running.start_again()

    failed = final(url, killed, orchestrator, "failed", "finished")
    assert failed["status"] == "failed", failed
    good = failed["epoch"]
    assert "trainer process killed by signal 9 (SIGKILL)" in failed["message"], failed
    assert f"last good epoch {good}" in failed["message"], failed
    Client(broker.address).lifecycle("resume", killed)
    row = final(url, rides, orchestrator, "finished", "failed")

    assert all(n < EPOCHS for n in stored_at_stop.values()), "both were training in the outage"
    assert row["status"] == "finished", row
    assert (row["epoch"], row["total_epochs"]) == (EPOCHS, EPOCHS)
    assert loss_epochs(url, rides) == list(range(1, EPOCHS + 1)), "each epoch stored once"
    in_kafka = published_epochs(broker.address, rides)
    assert [e for e, _ in in_kafka] == list(range(1, EPOCHS + 1)), "each epoch published once"
    stored = rows(url, "SELECT epoch, at FROM nnt_epoch_metric WHERE simulation_id = %s "
                       "AND metric = 'loss' ORDER BY epoch", rides)  # fmt: skip
    assert [(e, at.isoformat().replace("+00:00", "Z")) for e, at in stored] == [
        (e, at.replace("+00:00", "Z")) for e, at in in_kafka
    ], "the stored rows are the published events"
    statuses = [s for s, _ in status_history(url, rides)]
    assert statuses.count("starting") == 1 and "failed" not in statuses, statuses

    resumed = final(url, killed, orchestrator, "finished")
    assert (resumed["epoch"], resumed["total_epochs"]) == (EPOCHS, EPOCHS)
    epochs = loss_epochs(url, killed)
    assert sorted(set(epochs)) == list(range(1, EPOCHS + 1)), f"an epoch was lost: {epochs}"
    again = [e for e, n in collections.Counter(epochs).items() if n > 1]
    assert again in ([], [good + 1]), f"only the interrupted epoch may be trained twice: {epochs}"
    assert orchestrator.proc is not None and orchestrator.proc.poll() is None
    assert stream.alive()
