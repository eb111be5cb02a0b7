"""The run record several orchestrators share, on a real PostgreSQL: one claim per command,
one decision per run at a time, leases that expire, blobs that come back byte for byte."""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from pathlib import Path

import pytest

from store.blobs import PART_BYTES, Blobs
from store.database import Database, StoreError
from store.runs import GRANTS, RunRecords
from tests.timeseries_data import empty_database

pytestmark = pytest.mark.integration


@pytest.fixture
def url(pg_url: str) -> str:
    return empty_database(pg_url, "nnt_store")


def records(url: str) -> RunRecords:
    runs = RunRecords(Database(url))
    runs.ensure()
    return runs


def test_it_gives_each_command_to_exactly_one_host_among_racing_ones(url: str) -> None:
    hosts = [records(url) for _ in range(4)]
    command = uuid.uuid4()
    winners: list[str] = []

    def race(i: int) -> None:
        if hosts[i].claim(command, f"host-{i}"):
            winners.append(f"host-{i}")

    threads = [threading.Thread(target=race, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1
    winner = int(winners[0].rsplit("-", 1)[1])
    assert hosts[winner].claim(command, winners[0]), "the claimer gets it again (redelivery)"
    assert not hosts[(winner + 1) % 4].is_done(command)
    hosts[winner].mark_done(command, winners[0])
    assert hosts[(winner + 1) % 4].is_done(command)


def test_it_lets_one_host_decide_for_a_run_at_a_time(url: str) -> None:
    a, b = records(url), records(url)
    sid = uuid.uuid4()
    a.add(sid, '{"owner": "ana", "datasets": {}}')
    order: list[str] = []
    with a.lock(sid):
        waiter = threading.Thread(target=lambda: (b.lock(sid).__enter__(), order.append("b")))
        waiter.start()
        time.sleep(0.5)
        order.append("a")
        a.set_state(sid, {"state": "running", "host": "a", "starts": ["x"]})
    waiter.join(10)
    assert order == ["a", "b"], "b waited for a's decision"
    assert b.state(sid) is not None and b.state(sid)["host"] == "a"  # type: ignore[index]


def test_it_reports_the_active_runs_of_a_silent_host_only(url: str) -> None:
    runs = records(url)
    alive, silent, idle = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    for sid, host, state in (
        (alive, "a", "running"),
        (silent, "b", "running"),
        (idle, "b", "stopped"),
    ):
        runs.add(sid, "{}")
        runs.set_state(sid, {"state": state, "host": host})
    runs.heartbeat("a")
    runs.heartbeat("b")
    assert runs.lost_runs("c", timeout_s=30) == []
    time.sleep(1.2)
    runs.heartbeat("a")
    lost = runs.lost_runs("c", timeout_s=1)
    assert [(sid, host) for sid, host, _ in lost] == [(silent, "b")]
    assert lost[0][2] >= 1


def test_it_returns_blobs_byte_for_byte_and_refuses_a_corrupt_one(url: str, tmp_path: Path) -> None:
    blobs = Blobs(Database(url))
    records(url)  # the tables
    data = bytes(range(256)) * (PART_BYTES // 256 * 2 + 7)  # three parts
    name = hashlib.sha256(data).hexdigest() + ".npz"
    (tmp_path / "in").write_bytes(data)
    blobs.put(name, tmp_path / "in")
    assert blobs.size(name) == len(data)
    assert blobs.get(name, tmp_path / "out") and (tmp_path / "out").read_bytes() == data
    blobs.put_bytes("checkpoint/x", b"")
    assert blobs.get_bytes("checkpoint/x") == b"" and blobs.get_bytes("nothing") is None

    wrong = "0" * 64 + ".npz"
    blobs.put_bytes(wrong, b"not what the name says")
    with pytest.raises(StoreError, match="does not match"):
        blobs.get(wrong, tmp_path / "bad")
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".blob-*"))


def test_an_orchestrator_role_with_row_rights_only_works_and_reads_nothing_else(
    url: str,
) -> None:
    import psycopg
    from psycopg import sql

    records(url)  # the tables, made by the owner (provisioning)
    role = f"orch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE web_secrets (v text)")
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(role)))
        conn.execute(GRANTS.format(role=role))
    limited = _with_user(url, role, "pw")
    runs = records(limited)  # ensure() needs no DDL right
    sid = uuid.uuid4()
    runs.add(sid, '{"owner_id": 1, "datasets": {}}')
    with runs.lock(sid):
        runs.set_state(sid, {"state": "running", "host": "a"})
    assert runs.claim(uuid.uuid4(), "a") and runs.ids(host="a") == [sid]
    with psycopg.connect(limited) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM web_secrets")


def _with_user(url: str, user: str, password: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{user}:{password}@{host}:{parts.port}" if parts.port else f"{user}:{password}@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_an_orchestrator_whose_database_is_down_says_so_in_one_line(tmp_path: Path) -> None:
    import os
    import socket
    import subprocess
    import sys

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "NNT_HOME": str(tmp_path), "NNT_KAFKA_BOOTSTRAP": "127.0.0.1:1",
           "DATABASE_URL": f"postgresql://nnt:pw@127.0.0.1:{port}/nntracker"}  # fmt: skip
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "orchestrator"], env=env, cwd=root, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("orchestrator: DATABASE_URL: the database does not answer"), last
    assert "Traceback" not in done.stderr
