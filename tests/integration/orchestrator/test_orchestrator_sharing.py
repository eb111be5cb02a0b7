"""Two orchestrators in one consumer group share the simulations of an experiment, and
stopping one hands its not-yet-started simulations to the other."""

from __future__ import annotations

import json
import signal
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from schemas.commands import CreateCommand
from schemas.experiment import simulation_id
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    partition_of,
    until,
)

SIMS = 4


def split_experiment_id() -> uuid.UUID:
    """An experiment whose simulations fall two in partitions 0-2 and two in 3-5 (range halves)."""
    while True:
        eid = uuid.uuid4()
        low = sum(partition_of(simulation_id(eid, i)) < 3 for i in range(SIMS))
        if low == 2:
            return eid


def members_assigned(bootstrap: str, group: str) -> bool:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    (future,) = admin.describe_consumer_groups([group], request_timeout=5).values()
    try:
        members = future.result(10).members
    except Exception:  # noqa: BLE001 - the coordinator may still be loading: ask again
        return False
    return len(members) == 2 and all(m.assignment.topic_partitions for m in members)


def host_of(home: Path, sid: uuid.UUID) -> str | None:
    try:
        state = json.loads((home / "runs" / str(sid) / "state.json").read_text())
    except (OSError, ValueError):
        return None
    return state["host"] if state["state"] != "queued" else None


def test_it_shares_work_and_hands_over_the_queue_of_a_stopped_member(
    home: Path, kafka_bootstrap: str, client: Client, status_tap: Tap
) -> None:
    group = f"test-{uuid.uuid4()}"
    a = Orch(home, kafka_bootstrap, "host-a", group, NNT_MAX_RUNS="1").start()
    b = Orch(home, kafka_bootstrap, "host-b", group, NNT_MAX_RUNS="1").start()
    try:
        until(lambda: members_assigned(kafka_bootstrap, group), 90, "both members assigned", a)
        eid = split_experiment_id()
        rates = [0.001, 0.002, 0.003, 0.004]
        experiment = demo_experiment(home, 1, learning_rates=rates)
        client.send(CreateCommand(experiment_id=eid, issued_by="ana", experiment=experiment))
        sids = [simulation_id(eid, i) for i in range(SIMS)]
        started = until(lambda: {h for s in sids if (h := host_of(home, s))} == {"host-a", "host-b"} and
                        {s: host_of(home, s) for s in sids}, 120, "one run on each host", a)  # fmt: skip
        on_a = next(s for s, h in started.items() if h == "host-a")
        half = partition_of(on_a) < 3
        waiting_on_a = [s for s in sids if (partition_of(s) < 3) == half and s != on_a]
        assert waiting_on_a and all(host_of(home, s) is None for s in waiting_on_a)

        a.kill(signal.SIGTERM)
        assert a.proc is not None and a.proc.returncode == 0
        until(lambda: status_tap.status(on_a, "stopped", "orchestrator"), 30, "A's run stopped", b)
        for sid in waiting_on_a:
            until(lambda s=sid: host_of(home, s) == "host-b", 150, f"{sid} moved to host-b", b)
        for sid in (s for s in sids if s != on_a):
            until(
                lambda s=sid: status_tap.status(s, "finished", "trainer"), 150, f"{sid} finished", b
            )
    finally:
        a.kill()
        b.kill()
