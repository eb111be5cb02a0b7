"""The orchestrators' decisions on the shared run record (a real PostgreSQL; the runtime and
the publisher are the unit tests' stand-ins): hosts with separate homes see the same runs,
answer each command once, and take over the runs of a host whose lease ran out."""

from __future__ import annotations

import hashlib
from pathlib import Path

import psycopg
import pytest

from orchestrator.service import Orchestrator
from orchestrator.shared import SharedRuns
from schemas import codecs
from tests.timeseries_data import empty_database
from tests.unit.orchestrator.fakes import create_command, events, lifecycle, make, signed, starts

pytestmark = pytest.mark.integration


@pytest.fixture
def url(pg_url: str) -> str:
    return empty_database(pg_url, "nnt_hosts")


def host(tmp_path: Path, name: str, url: str) -> Orchestrator:
    (tmp_path / name).mkdir()
    orch = make(tmp_path / name, nnt_hostname=name, database_url=url, nnt_host_timeout_seconds=5)
    assert isinstance(orch.runs, SharedRuns)
    return orch


def create(orch: Orchestrator, content: bytes = b"label,x\n0,1\n") -> str:
    """A `create` (two runs) on `orch`, with a dataset only that host stores; its file name."""
    name = hashlib.sha256(content).hexdigest() + ".csv"
    (orch.settings.datasets_dir / name).write_bytes(content)
    command = create_command()
    command.experiment["dataset_train"] = f"stored:{name}"
    orch.on_work(codecs.dumps(signed(command)))
    return name


def silence(url: str, name: str, seconds: int) -> None:
    """Backdate a host's lease as if it had been silent that long."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "UPDATE nnt_orchestrator_host SET seen_at = now() - make_interval(secs => %s) "
            "WHERE host = %s",
            (seconds, name),
        )


def test_hosts_with_separate_homes_share_runs_and_answer_each_command_once(
    tmp_path: Path, url: str
) -> None:
    a, b = host(tmp_path, "h1", url), host(tmp_path, "h2", url)
    name = create(a)  # only h1 has the upload on its disk
    first, second = starts(a)
    assert b.on_work(codecs.dumps(first)) is True  # h2 starts a run h1 created
    assert b.runs.dir(first.simulation_id).read().owned_by("h2")
    copied = b.settings.datasets_dir / name
    assert copied.read_bytes() == (a.settings.datasets_dir / name).read_bytes(), "via the database"
    assert (b.settings.runs_dir / str(first.simulation_id) / "run.json").is_file()

    stop = codecs.dumps(lifecycle("stop", second.simulation_id))  # queued: nobody runs it
    a.on_broadcast(stop)
    b.on_broadcast(stop)
    answers = [e for o in (a, b) for e in events(o) if e[0] == second.simulation_id]
    assert [e[1] for e in answers][-1:] == ["stopped"] and len(answers) == 2, (
        answers
    )  # queued + one answer
    assert b.runs.dir(second.simulation_id).read().state == "stopped"


def test_a_silent_hosts_running_run_is_taken_over_once_and_a_paused_one_stopped(
    tmp_path: Path, url: str
) -> None:
    a, b, c = host(tmp_path, "h1", url), host(tmp_path, "h2", url), host(tmp_path, "h3", url)
    create(a)
    running, paused = starts(a)
    a.settings = a.settings.model_copy(update={"nnt_max_runs": 2})
    assert a.on_work(codecs.dumps(running)) and a.on_work(codecs.dumps(paused))
    a.on_broadcast(codecs.dumps(lifecycle("pause", paused.simulation_id)))
    a.tick()  # its lease
    assert a.runs.dir(paused.simulation_id).read().state == "paused"

    b.tick()
    assert b.runs.dir(running.simulation_id).read().host == "h1", "h1 is still within its lease"
    silence(url, "h1", 30)
    b.last_beat = c.last_beat = 0.0
    b.tick()
    c.tick()  # too late: h2 took both
    taken = b.runs.dir(running.simulation_id).read()
    assert (taken.state, taken.host) == ("queued", None)
    assert "h1 stopped answering" in taken.message and "taken over by h2" in taken.message
    stopped = b.runs.dir(paused.simulation_id).read()
    assert stopped.state == "stopped" and "h1 stopped answering" in stopped.reason
    assert [cmd.simulation_id for cmd in starts(b)] == [running.simulation_id]
    assert starts(c) == [] and not [e for e in events(c) if e[1] in ("queued", "stopped")]
    # The queued start runs wherever a slot is free, here on h3.
    assert c.on_work(codecs.dumps(starts(b)[0])) is True
    assert c.runs.dir(running.simulation_id).read().owned_by("h3")
