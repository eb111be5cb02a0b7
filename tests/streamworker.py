"""Start `python -m stream_processors` as a real subprocess and poll for its results."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import confluent_kafka
import psycopg

from schemas import auth, topics
from tests.accounts import TEST_SECRET

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[1]
WEB_TABLES = Path(__file__).with_name("web_tables.sql")


class Worker:
    """One worker process with its log file."""

    def __init__(self, bootstrap: str, pg_url: str, home: Path) -> None:
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "worker.log"
        # A worker restarted in the same home appends to the same log: read only its own part.
        self.log_from = self.log.stat().st_size if self.log.exists() else 0
        env = {
            **os.environ,
            "NNT_KAFKA_BOOTSTRAP": bootstrap,
            "DATABASE_URL": pg_url,
            "NNT_HOME": str(home),
            "PYTHONUNBUFFERED": "1",
            # A stalled partition is moved again after 6 checks: 18 s here, 60 s by default.
            "NNT_PARTITION_CHECK_S": os.environ.get("NNT_PARTITION_CHECK_S", "3"),
        }
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "stream_processors"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def text(self) -> str:
        """This worker process's log so far."""
        with self.log.open("rb") as fh:
            fh.seek(self.log_from)
            return fh.read().decode(errors="replace")

    def wait_ready(self, timeout: float = 120) -> None:
        """Until Faust reports ready (partitions assigned)."""
        until(lambda: "Worker ready" in self.text() or None, timeout, self)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal the worker and wait for it to exit; returns its exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def until(
    probe: Callable[[], T | None],
    timeout: float,
    worker: Worker | None = None,
    *others: Worker | None,
) -> T:
    """Poll `probe` until it returns a truthy value; fail with the workers' logs otherwise.

    `worker` must stay alive while waiting; `others` are only reported. On a timeout each
    live worker first logs its consumer's view of every partition (SIGUSR1), so the failure
    says which worker holds the partition that stopped."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker is not None and worker.proc.poll() is not None:
            raise AssertionError(
                f"worker exited {worker.proc.returncode}:\n{worker.text()[-4000:]}"
            )
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    watched = [w for w in (worker, *others) if w is not None]
    for w in watched:
        if w.proc.poll() is None:
            w.proc.send_signal(signal.SIGUSR1)
    time.sleep(1 if watched else 0)
    tails = "\n".join(
        f"--- worker pid {w.proc.pid} ({w.log}) ---\n{w.text()[-4000:]}" for w in watched
    )
    raise AssertionError(f"condition not met within {timeout}s\n{tails}")


def secret() -> str:
    """The command secret the workers started by the tests share (tests/conftest.py)."""
    return os.environ.get("NNT_COMMAND_SECRET") or TEST_SECRET


def run_key(simulation_id: uuid.UUID | str) -> str:
    """The event key of one run, as the orchestrator gives it to the run's trainer."""
    return auth.run_key(secret(), uuid.UUID(str(simulation_id)))


def signed(key: str, value: bytes, topic: str = topics.EPOCHS) -> list[tuple[str, bytes]]:
    """Kafka headers of a message keyed by its simulation id, signed as its sender signs it
    (stream_processors/provenance.py refuses unsigned events): with that run's key, as a
    trainer does, or on nnt.resources with the orchestrator's service key."""
    orchestrator = topic == topics.RESOURCES
    by = auth.service_key(secret(), "orchestrator") if orchestrator else run_key(key)
    return [(auth.SIGNATURE_HEADER, auth.mac(by, value).encode())]


def produce(
    bootstrap: str, topic: str, messages: list[tuple[str, bytes]], sign: bool = True
) -> None:
    """Produce (key, value) messages, each signed by the run its key names (unless `sign` is
    false), and wait for the broker to have them all."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for key, value in messages:
        headers = signed(key, value, topic) if sign else None
        producer.produce(topic, key=key.encode(), value=value, headers=headers)
    assert producer.flush(30) == 0


class Reader:
    """Reads a topic from the beginning with its own consumer group."""

    def __init__(self, bootstrap: str, topic: str, group: str) -> None:
        self.consumer = confluent_kafka.Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        self.consumer.subscribe([topic])
        self.seen: list[tuple[bytes | None, bytes]] = []

    def poll(self, key: str) -> list[bytes]:
        """Read what is available; return every value so far whose key is `key`."""
        while (msg := self.consumer.poll(0.5)) is not None:
            if msg.error() is None:
                self.seen.append((msg.key(), msg.value()))
        return [v for k, v in self.seen if k == key.encode()]

    def close(self) -> None:
        """Leave the group."""
        self.consumer.close()


def rows(pg_url: str, sql: str, *params: object) -> list[tuple]:
    """Run one query and return its rows."""
    with psycopg.connect(pg_url) as conn:
        return conn.execute(sql, params).fetchall()


def produce_to(
    bootstrap: str,
    topic: str,
    messages: list[tuple[str, bytes]],
    partition: int | None = None,
    timestamp_ms: int | None = None,
) -> None:
    """Produce (key, value) messages, signed by the run their key names, optionally to one
    partition (so a marker sent after them is read after them) and with a fixed record
    timestamp (what a redelivery carries)."""
    producer = confluent_kafka.Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    extra: dict[str, int] = {}
    if partition is not None:
        extra["partition"] = partition
    if timestamp_ms is not None:
        extra["timestamp"] = timestamp_ms
    for key, value in messages:
        producer.produce(
            topic, key=key.encode(), value=value, headers=signed(key, value, topic), **extra
        )
    assert producer.flush(30) == 0


def find_command(bootstrap: str, key: str, timeout: float = 30.0) -> Any:
    """The first command on nnt.commands keyed `key` (read from the start of every partition:
    the session's topic holds every earlier test's commands too), or None after `timeout`."""
    from schemas import topics
    from schemas.codecs import load_command

    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"t-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
        }  # fmt: skip
    )
    try:
        meta = consumer.list_topics(topics.COMMANDS, timeout=10).topics[topics.COMMANDS]
        consumer.assign(
            [confluent_kafka.TopicPartition(topics.COMMANDS, p, 0) for p in meta.partitions]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error() and msg.key() == key.encode():
                return load_command(msg.value())
    finally:
        consumer.close()
    return None
