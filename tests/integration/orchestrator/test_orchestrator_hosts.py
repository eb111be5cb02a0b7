"""Two orchestrators on hosts that share no folder (each its own NNT_HOME) but one database
and one broker. Host A runs a simulation and dies mid-run (its orchestrator and its trainer
killed); host B takes the run over: its dataset and last checkpoint come from the database,
and it trains on from there to the end, every epoch present."""

from __future__ import annotations

import os
import signal
import uuid
from pathlib import Path

import psycopg
import pytest

from schemas.commands import CreateCommand
from schemas.experiment import simulation_id
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    epochs_of,
    skip_history,
    until,
)  # fmt: skip
from tests.timeseries_data import empty_database

pytestmark = pytest.mark.integration
EPOCHS = 16
TIMEOUT_S = "6"  # NNT_HOST_TIMEOUT_SECONDS: how long a silent host keeps its runs


def record(url: str, sid: uuid.UUID) -> dict[str, object]:
    """The run's row in the shared record ({} until it is recorded)."""
    with psycopg.connect(url) as conn:
        cur = conn.execute(
            "SELECT state, host, pid, checkpoint_epoch FROM nnt_run_record "
            "WHERE simulation_id = %s",
            (sid,),
        )
        row = cur.fetchone()
    return dict(zip(("state", "host", "pid", "checkpoint_epoch"), row, strict=True)) if row else {}


def test_it_takes_over_the_run_of_a_dead_host_from_its_last_checkpoint(
    tmp_path: Path,
    pg_url: str,
    kafka_bootstrap: str,
    client: Client,
    status_tap: Tap,
    epoch_tap: Tap,
) -> None:
    url = empty_database(pg_url, "nnt_hosts")
    home_a, home_b = tmp_path / "host-a", tmp_path / "host-b"
    home_a.mkdir()
    home_b.mkdir()
    group = f"test-{uuid.uuid4()}"
    env = {"DATABASE_URL": url, "NNT_HOST_TIMEOUT_SECONDS": TIMEOUT_S}
    for host in ("host-a", "host-b"):
        skip_history(kafka_bootstrap, group, host)
    a = Orch(home_a, kafka_bootstrap, "host-a", group, **env).start()
    b = Orch(home_b, kafka_bootstrap, "host-b", group, **env)
    try:
        create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                               experiment=demo_experiment(home_a, EPOCHS, batch_size=8))  # fmt: skip
        client.send(create)
        sid = simulation_id(create.experiment_id, 0)
        until(lambda: record(url, sid).get("checkpoint_epoch", 0) >= 2, 180,  # type: ignore[operator]
              "host A kept a checkpoint in the database", a)  # fmt: skip
        b.start()
        row = record(url, sid)
        assert row["state"] == "running" and row["host"] == "host-a", row

        # Host A dies: its orchestrator and its trainer, at once.
        a.kill(signal.SIGKILL, 10)
        os.kill(int(row["pid"]), signal.SIGKILL)  # type: ignore[arg-type]

        until(lambda: status_tap.status(sid, "queued", message="taken over by host-b"), 60,
              "host B took the run over", b)  # fmt: skip
        until(lambda: status_tap.status(sid, "finished"), 240, "the run finished on B", b)
    finally:
        a.kill(signal.SIGKILL, 10)
        b.kill()
    taken = status_tap.status(sid, "queued", message="taken over by host-b")
    assert taken and "host-a stopped answering" in taken["message"], taken
    resumed_from = int(taken["epoch"])
    assert resumed_from >= 2
    epochs = epochs_of(epoch_tap, sid)
    assert sorted(set(epochs)) == list(range(1, EPOCHS + 1)), epochs
    # B trained only what the checkpoint lacked: each epoch after it once, from B.
    assert epochs[-(EPOCHS - resumed_from) :] == list(range(resumed_from + 1, EPOCHS + 1))
    final = record(url, sid)
    assert (final["state"], final["host"]) == ("finished", "host-b"), final
    # B had none of A's files: the dataset and the checkpoint came from the database.
    assert {p.name for p in (home_b / "datasets").iterdir()} == {
        p.name for p in (home_a / "datasets").iterdir()
    }
    assert (home_b / "runs" / str(sid) / "checkpoints" / "latest.json").is_file()
