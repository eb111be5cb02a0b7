"""Real orchestrators (`python -m orchestrator` subprocesses), real Kafka, real podman."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

from infra import podman
from schemas import auth, codecs, epochs, topics
from schemas.commands import CreateCommand, LifecycleCommand, command_key
from tests import polling, standins
from tests.accounts import TEST_SECRET, USERS, publish_accounts, sign_as

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]


def until(check: Callable[[], T | None], timeout: float, what: str, orch: Orch | None = None) -> T:
    """Poll `check` until it returns a truthy value; fail naming `what` (and the log)."""
    return polling.until(check, timeout, what, context=orch.log_tail if orch else lambda: "")


def as_doc(raw: bytes) -> dict[str, Any]:
    """A message as JSON data: epoch events in their binary form (schemas.epochs) too."""
    if raw.startswith(epochs.MAGIC):
        return epochs.decode(raw).model_dump(mode="json")
    return json.loads(raw)  # type: ignore[no-any-return]


class Tap:
    """Reads a topic from the moment it is made (with `from_start`, from its beginning); keeps
    every decoded JSON value. Not from the beginning by default: the session's broker holds
    every earlier test's events (the stream tests' tens of thousands), which a tap would
    otherwise read through before it saw this test's."""

    def __init__(self, bootstrap: str, topic: str, from_start: bool = False) -> None:
        self.consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": f"tap-{uuid.uuid4()}",
             "enable.auto.commit": False}
        )  # fmt: skip
        parts = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([
            TopicPartition(topic, p, 0 if from_start else
                           self.consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1])
            for p in parts
        ])  # fmt: skip
        self.events: list[dict[str, Any]] = []

    def poll(self) -> list[dict[str, Any]]:
        """Everything read so far (reads what arrived since the last call)."""
        for msg in self.consumer.consume(500, 0.2):
            if msg.error() is None:
                with contextlib.suppress(ValueError):
                    self.events.append(as_doc(msg.value()))
        return self.events

    def of(self, sid: uuid.UUID | str) -> list[dict[str, Any]]:
        """The events of one simulation."""
        return [e for e in self.poll() if e.get("simulation_id") == str(sid)]

    def status(
        self, sid: uuid.UUID | str, status: str, source: str | None = None, **match: Any
    ) -> dict[str, Any] | None:
        """The latest event of `sid` with this status (and source / fields), if any."""
        found = [
            e for e in self.of(sid)
            if e["status"] == status and (source is None or e.get("source") == source)
            and all(str(e.get(k, "")).find(str(v)) >= 0 for k, v in match.items())
        ]  # fmt: skip
        return found[-1] if found else None

    def answer(self, command_id: uuid.UUID | str) -> dict[str, Any] | None:
        """The accepted/rejected answer naming a command id."""
        for e in self.poll():
            if e.get("command_id") == str(command_id) and e["status"] in ("accepted", "rejected"):
                return e
        return None

    def close(self) -> None:
        self.consumer.close()


class Orch:
    """One `python -m orchestrator` process with its own host name."""

    ready_s = 60.0  # how long a start may take to log "ready"

    def __init__(self, home: Path, bootstrap: str, host: str, group: str, **env: str) -> None:
        self.home, self.host = home, host
        self.log = home / f"orchestrator-{host}.log"
        # DATABASE_URL only when a test gives one (the shared run record); another test's in
        # this process's environment must not put this orchestrator on that database.
        inherited = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        self.env = {
            **inherited, "NNT_HOME": str(home), "NNT_KAFKA_BOOTSTRAP": bootstrap,
            "NNT_HOSTNAME": host, "NNT_ORCHESTRATOR_GROUP": group, "NNT_RESOURCE_PERIOD": "1",
            "NNT_RUN_CPUS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **env,
        }  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Orch:
        """Start it; ready once *this* process logged so (a restart appends to the same log)."""
        offset = self.log.stat().st_size if self.log.exists() else 0
        out = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "orchestrator"], env=self.env, cwd=ROOT, stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        out.close()
        try:
            until(lambda: "ready" in self.log.read_bytes()[offset:].decode(errors="replace"),
                  self.ready_s, f"orchestrator {self.host} ready", self)  # fmt: skip
        except AssertionError:
            # Never left behind: a live one would take every later test's commands too.
            self.kill(signal.SIGKILL, 10)
            raise
        return self

    def kill(self, sig: int = signal.SIGTERM, timeout: float = 90) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-4000:] if self.log.exists() else ""


class Client:
    """Sends commands the way the web does (confluent-kafka, key = id), signed as the test
    user named by `issued_by` (tests/accounts.py), whose records it publishes first."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer({"bootstrap.servers": bootstrap})
        publish_accounts(bootstrap)

    def send(self, command: CreateCommand | LifecycleCommand) -> uuid.UUID:
        if not command.signature:
            command = sign_as(command, command.issued_by or "ana")
        self.producer.produce(
            topics.COMMANDS, key=command_key(command), value=codecs.dumps(command)
        )
        self.producer.flush(10)
        return command.command_id

    def lifecycle(self, kind: str, sid: uuid.UUID, as_user: str = "ana") -> uuid.UUID:
        return self.send(LifecycleCommand(type=kind, simulation_id=sid, issued_by=as_user))  # type: ignore[arg-type]


def kcat(bootstrap: str, key: str, value: str) -> None:
    """Produce one message with kcat, a Kafka client that is not ours."""
    subprocess.run(  # noqa: S603
        ["kcat", "-b", bootstrap, "-t", topics.COMMANDS, "-P", "-K", "\t"],
        input=f"{key}\t{value}\n".encode(), check=True, timeout=30,
    )  # fmt: skip


def kcat_signed(bootstrap: str, kind: str, sid: uuid.UUID, as_user: str) -> str:
    """Send a command with docs/examples/kcat-command.sh (openssl signs, kcat sends), as a
    test user whose key is given to it the way GET /api/command-key would; its command id."""
    env = {
        **os.environ, "BROKER": bootstrap, "KEY": auth.user_key(TEST_SECRET, USERS[as_user], 0),
        "PRINCIPAL": f"user:{USERS[as_user]}", "KEY_ID": "0",
    }  # fmt: skip
    done = subprocess.run(  # noqa: S603 - the documented script
        ["bash", str(ROOT / "docs" / "examples" / "kcat-command.sh"), kind, str(sid)],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def demo_experiment(home: Path, epochs: int, batch_size: int = 32, **extra: Any) -> dict[str, Any]:
    """The digits demo with its files in the content-addressed store of `home`."""
    from trainer.demo import write_demo

    config, model, paths = write_demo(home / "demo-src", epochs)
    store = home / "datasets"
    store.mkdir(parents=True, exist_ok=True)
    for role, path in paths.items():
        digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
        shutil.copyfile(path, store / f"{digest}.npz")
        (store / f"{digest}.npz").chmod(0o640)  # as the web stores it
        config[f"dataset_{role}"] = f"stored:{digest}.npz"
    collect = {"gradients": False, "activations": False}
    return {**config, "batch_size": batch_size, "collect": collect, **extra, "model": model}


def epochs_of(tap: Tap, sid: uuid.UUID) -> list[int]:
    """Epoch numbers published on nnt.epochs for one simulation, in arrival order."""
    return [int(e["epoch"]) for e in tap.of(sid)]


@pytest.fixture(scope="session")
def docker_host() -> str:
    """podman's Docker API, set up by infra/podman/setup.sh: no skip path, CI or not."""
    return podman.ensure()


@pytest.fixture
def client(kafka_bootstrap: str) -> Client:
    return Client(kafka_bootstrap)


@pytest.fixture
def status_tap(kafka_bootstrap: str) -> Iterator[Tap]:
    tap = Tap(kafka_bootstrap, topics.STATUS)
    yield tap
    tap.close()


@pytest.fixture
def epoch_tap(kafka_bootstrap: str) -> Iterator[Tap]:
    tap = Tap(kafka_bootstrap, topics.EPOCHS)
    yield tap
    tap.close()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    tmp_path.chmod(0o755)
    return tmp_path


def partition_of(key: uuid.UUID) -> int:
    """librdkafka's default partitioner (consistent_random: CRC32 of the key)."""
    return zlib.crc32(str(key).encode()) % topics.PARTITIONS[topics.COMMANDS]


def sleeper_python(directory: Path) -> str:
    """A stand-in for the trainer's Python that just sleeps: holds a slot, costs no CPU."""
    return standins.sleeping_python(directory)


def rows(pg_url: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    """Run one query and return its rows."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(sql, params).fetchall()


def skip_history(bootstrap: str, group: str, host: str) -> None:
    """Start an orchestrator's groups at the end of nnt.commands: earlier tests' commands
    (same session broker) are not replayed into this one."""
    for name in (group, f"{group}.host.{host}"):
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": name,
                             "enable.auto.commit": False})  # fmt: skip
        parts = consumer.list_topics(topics.COMMANDS, timeout=10).topics[topics.COMMANDS]
        ends = [TopicPartition(topics.COMMANDS, p, _end(consumer, p)) for p in parts.partitions]
        consumer.commit(offsets=ends, asynchronous=False)
        consumer.close()


def _end(consumer: Consumer, partition: int) -> int:
    """High watermark of one nnt.commands partition (a new topic may still elect its leader)."""
    for _ in range(60):
        with contextlib.suppress(KafkaException):
            return int(
                consumer.get_watermark_offsets(TopicPartition(topics.COMMANDS, partition), 5)[1]
            )
        time.sleep(0.5)
    raise AssertionError(f"{topics.COMMANDS}[{partition}] has no leader after 30 s")
