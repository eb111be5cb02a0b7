"""Services a fault test may kill and start again: the broker, the database, the stream
worker and an orchestrator (process runtime), all real, started by the product's own code.

They belong to this folder only (their own NNT_HOME, ports and data): restarting them never
disturbs the session services other folders use.
"""

from __future__ import annotations

import signal
import tempfile
import threading
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import psycopg
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from schemas import codecs, topics
from schemas.commands import CreateCommand
from schemas.epochs import EpochEvent
from schemas.epochs import decode as decode_epoch
from schemas.experiment import simulation_id
from tests import services
from tests.integration.orchestrator.conftest import Client, Orch, demo_experiment
from tests.streamworker import WEB_TABLES, Worker, signed

WORKER_APP = "nnt-fault-worker"  # the worker's application_name in pg_stat_activity


@dataclass
class Service:
    """A running broker or database: its address and the process behind it."""

    address: str
    running: services.Running


@pytest.fixture(scope="session")
def fault_home() -> Iterator[Path]:
    """NNT_HOME of this folder's services. Not under pytest's basetemp: another pytest run
    resets that to mode 0700, and the embedded PostgreSQL (another user) must reach its data
    again when it restarts."""
    with tempfile.TemporaryDirectory(prefix="nnt-faults-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        yield home


@pytest.fixture(scope="session")
def broker(fault_home: Path) -> Iterator[Service]:
    """A single-node broker with the product's topics (infra.kafka), restartable."""
    bootstrap, running = services.start_kafka(fault_home)
    yield Service(bootstrap, running)
    running.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(broker: Service) -> str:
    """This folder's broker, for every helper that asks for the session's one."""
    return broker.address


@pytest.fixture(scope="session")
def database(fault_home: Path) -> Iterator[Service]:
    """Embedded PostgreSQL (infra.postgres) with the time-series and web tables, restartable."""
    url, running = services.start_postgres(fault_home)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(WEB_TABLES.read_text())
    yield Service(url, running)
    running.stop()


@pytest.fixture(scope="session")
def pg_url(database: Service) -> str:
    """This folder's database."""
    return database.address


class Stream:
    """`python -m stream_processors`, the one this folder's tests share; a test may kill it and
    start another in its place (same group, same log)."""

    def __init__(self, bootstrap: str, url: str, home: Path) -> None:
        sep = "&" if "?" in url else "?"
        self.bootstrap, self.url, self.home = (
            bootstrap,
            f"{url}{sep}application_name={WORKER_APP}",
            home,
        )
        self.worker = self.start()

    def start(self) -> Worker:
        """Start a worker (logging what it stored every second) and wait until Faust has
        assigned it partitions."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("NNT_STREAM_REPORT_S", "1")
            self.worker = Worker(self.bootstrap, self.url, self.home)
        self.worker.wait_ready()
        return self.worker

    def alive(self) -> bool:
        return self.worker.proc.poll() is None


@pytest.fixture(scope="session")
def stream(broker: Service, database: Service, fault_home: Path) -> Iterator[Stream]:
    """The stream worker."""
    running = Stream(broker.address, database.address, fault_home / "stream")
    yield running
    running.worker.stop()


class Orchestrator(Orch):
    """An orchestrator that can be killed and started again under the same host name."""

    ready_s = 90.0

    def sigkill(self) -> int:
        """SIGKILL, as an OOM killer or a crash would end it; returns its exit code."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(30)


@pytest.fixture(scope="session")
def orchestrator(broker: Service, stream: Stream, fault_home: Path) -> Iterator[Orchestrator]:
    """One orchestrator (process runtime, two slots) feeding trainers' events to the worker."""
    home = fault_home / "orchestrator"
    home.mkdir()
    home.chmod(0o755)
    group = f"faults-{uuid.uuid4()}"
    running = Orchestrator(home, broker.address, "fault-host", group, NNT_MAX_RUNS="2")
    yield running.start()
    running.kill()


def submit(orch: Orchestrator, epochs: int, batch_size: int = 8) -> uuid.UUID:
    """Create a one-simulation digits experiment the way the web does; its simulation id."""
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                           experiment=demo_experiment(orch.home, epochs, batch_size=batch_size))  # fmt: skip
    Client(orch.env["NNT_KAFKA_BOOTSTRAP"]).send(create)
    return simulation_id(create.experiment_id, 0)


def rows(url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one query and return its rows."""
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def loss_epochs(url: str, sid: uuid.UUID) -> list[int]:
    """Epochs with a stored loss, one entry per row (a duplicate shows twice), in order."""
    found = rows(url, "SELECT epoch FROM nnt_epoch_metric WHERE simulation_id = %s "
                      "AND metric = 'loss' ORDER BY epoch, at", sid)  # fmt: skip
    return [e for (e,) in found]


def simulation(url: str, sid: uuid.UUID) -> dict[str, Any] | None:
    """The simulation's row as the web shows it (status, epoch, message), if any."""
    found = rows(url, "SELECT status, epoch, total_epochs, message FROM nnt_simulation "
                      "WHERE id = %s", sid)  # fmt: skip
    if not found:
        return None
    return dict(zip(("status", "epoch", "total_epochs", "message"), found[0], strict=True))


def status_history(url: str, sid: uuid.UUID) -> list[tuple[str, str]]:
    """(status, message) of every stored status event of the simulation, oldest first."""
    found = rows(url, "SELECT status, message FROM nnt_status_event WHERE simulation_id = %s "
                      "ORDER BY at", sid)  # fmt: skip
    return [(s, m) for s, m in found]


def run_dir(orch: Orchestrator, sid: uuid.UUID) -> Path:
    """The simulation's run directory."""
    return orch.home / "runs" / str(sid)


class AckedProducer:
    """Streams one-metric epoch events for a few simulations from a thread and keeps those the
    broker acknowledged (the delivery report said OK): what must end up stored, exactly once."""

    def __init__(self, bootstrap: str, sims: int = 8, hz: float = 25.0) -> None:
        self.sims = [uuid.uuid4() for _ in range(sims)]
        self.producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                                  "linger.ms": 5})  # fmt: skip
        self.acked: dict[uuid.UUID, set[int]] = defaultdict(set)
        self.failed: list[str] = []
        self.period = 1.0 / hz
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="acked-producer", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        epoch = 0
        while not self.stopping.is_set():
            epoch += 1
            for sid in self.sims:
                event = EpochEvent(simulation_id=sid, epoch=epoch, total_epochs=0,
                                   metrics={"loss": 1.0 / epoch})  # fmt: skip
                value = codecs.dumps(event)
                self.producer.produce(topics.EPOCHS, key=str(sid).encode(), value=value,
                                      headers=signed(str(sid), value),  # as its trainer signs
                                      on_delivery=partial(self._delivered, sid, epoch))  # fmt: skip
            self.producer.poll(0)
            time.sleep(self.period)
        self.producer.flush(60)

    def _delivered(self, sid: uuid.UUID, epoch: int, err: object, _msg: object) -> None:
        if err is None:
            self.acked[sid].add(epoch)
        else:
            self.failed.append(str(err))

    def total(self) -> int:
        """Events acknowledged so far."""
        return sum(len(v) for v in list(self.acked.values()))

    def finish(self) -> dict[uuid.UUID, set[int]]:
        """Stop producing, wait for the last delivery reports; what was acknowledged."""
        self.stopping.set()
        self.thread.join(90)
        assert not self.thread.is_alive(), "the producer did not finish"
        return {sid: set(self.acked[sid]) for sid in self.sims}


def stored_epochs(url: str, sims: list[uuid.UUID]) -> dict[uuid.UUID, list[int]]:
    """Every stored loss row's epoch per simulation (a duplicate shows twice)."""
    found = rows(url, "SELECT simulation_id, epoch FROM nnt_epoch_metric "
                      "WHERE simulation_id = ANY(%s) AND metric = 'loss'", sims)  # fmt: skip
    out: dict[uuid.UUID, list[int]] = {sid: [] for sid in sims}
    for sid, epoch in found:
        out[sid].append(epoch)
    return out


def assert_stored_exactly_once(
    url: str, bootstrap: str, acked: dict[uuid.UUID, set[int]], worker: Worker
) -> None:
    """Wait until every acknowledged event is stored; then each is there exactly once and
    nothing else is."""
    sims = list(acked)
    want = sum(len(v) for v in acked.values())
    deadline = time.monotonic() + 180
    while sum(len(v) for v in stored_epochs(url, sims).values()) < want:
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    time.sleep(1.5)  # a late duplicate would land now
    stored = stored_epochs(url, sims)
    for sid in sims:
        epochs = sorted(stored[sid])
        assert len(epochs) == len(set(epochs)), f"{sid}: duplicated epochs stored"
        missing = sorted(acked[sid] - set(epochs))
        assert set(epochs) == acked[sid], (
            f"{sid} (partition {partition_of(sid)}): stored epochs differ from acknowledged ones: "
            f"{len(missing)} missing {_ranges(missing)}, unacknowledged "
            f"{sorted(set(epochs) - acked[sid])[:10]}; {where(bootstrap, sid, missing[:3])}\n"
            f"{worker.text()[-3000:]}"
        )


def where(bootstrap: str, sid: uuid.UUID, epochs: list[int]) -> str:
    """Offsets of `sid`'s events of `epochs` and the stream group's committed offset of their
    partition: tells a commit that passed them from a read that skipped them."""
    part = TopicPartition(topics.EPOCHS, partition_of(sid), 0)
    reader = Consumer({"bootstrap.servers": bootstrap, "group.id": "nntracker-stream",
                       "enable.auto.commit": False})  # fmt: skip
    try:
        committed = reader.committed([part], timeout=10)[0].offset
        reader.assign([part])
        found: dict[int, int] = {}
        while (batch := reader.consume(1000, 2.0)) and len(found) < len(epochs):
            for msg in batch:
                if msg.error() is None and msg.key() == str(sid).encode():
                    epoch = decode_epoch(msg.value()).epoch
                    if epoch in epochs:
                        found[epoch] = int(msg.offset() or 0)
        return f"offsets {found} in {topics.EPOCHS}[{part.partition}], committed {committed}"
    finally:
        reader.close()


def partition_of(sid: uuid.UUID) -> int:
    """nnt.epochs partition of a simulation's events (librdkafka's default partitioner)."""
    return zlib.crc32(str(sid).encode()) % topics.PARTITIONS[topics.EPOCHS]


def _ranges(values: list[int]) -> str:
    """[1, 2, 3, 7] as '1-3, 7'."""
    out: list[str] = []
    for v in values:
        if out and int(out[-1].split("-")[-1]) == v - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{v}"
        else:
            out.append(str(v))
    return ", ".join(out)
