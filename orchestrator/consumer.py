"""The Kafka side: three consumers feeding one Orchestrator, offsets committed after the work.

- shared group (`NNT_ORCHESTRATOR_GROUP`): `create` and `start`. A `start` that must wait (no
  free slot, or its owner over quota) is held in a local queue and consuming goes on; a
  `create` whose datasets are URLs is fetched on a worker thread. Per partition the committed
  offset never passes a held or fetching message, so if this orchestrator dies or leaves, the
  group hands them (and the handled messages after them, which are idempotent) to another
  member: its queue moves.
- per-host group (`<group>.host.<hostname>`): every lifecycle command, acted on by the owner.
- per-host group on `nnt.epochs`: progress and NaN watching of this host's runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from orchestrator.creation import Deferred
from orchestrator.publisher import StatusPublisher
from orchestrator.runtime import Runtime
from orchestrator.service import Orchestrator
from orchestrator.settings import OrchestratorSettings
from schemas import auth, topics

log = logging.getLogger(__name__)
RETRY_S = 1.0
FETCH_THREADS = 2
Part = tuple[str, int]  # topic, partition
Key = tuple[str, int, int]  # topic, partition, offset


def _consumer(settings: OrchestratorSettings, group: str, **extra: Any) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.nnt_kafka_bootstrap,
            "group.id": group,
            "client.id": f"nnt-orchestrator-{settings.nnt_hostname}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 10000,
            "heartbeat.interval.ms": 1000,
            **settings.confluent_config(),
            **extra,
        }
    )


def _ok(msg: Message | None) -> bool:
    if msg is None:
        return False
    err = msg.error()
    if err is not None:
        if err.code() != KafkaError._PARTITION_EOF:
            log.warning("consumer error: %s", err)
        return False
    return True


class Loop:
    """One orchestrator process's consumers, its held starts and its downloads in flight."""

    def __init__(self, settings: OrchestratorSettings, orch: Orchestrator) -> None:
        self.settings, self.orch = settings, orch
        group = settings.nnt_orchestrator_group
        self.work = _consumer(settings, group)
        self.broadcast = _consumer(settings, f"{group}.host.{settings.nnt_hostname}")
        self.epochs = _consumer(
            settings, f"{group}.host.{settings.nnt_hostname}.epochs",
            **{"enable.auto.commit": True, "auto.offset.reset": "latest"},
        )  # fmt: skip
        self.held: dict[Key, Message] = {}  # oldest first
        self.fetching: dict[Key, tuple[Future[object], Deferred]] = {}
        self.detached: list[tuple[Future[object], Deferred]] = []  # of revoked partitions
        self.next: dict[Part, int] = {}  # offset after the last message handled
        self.committed: dict[Part, int] = {}
        self.downloads = threading.BoundedSemaphore(FETCH_THREADS)
        self.last_retry = 0.0
        self.last_load = 0
        self.work.subscribe([topics.COMMANDS], on_revoke=self._revoked)
        self.broadcast.subscribe([topics.COMMANDS])
        self.epochs.subscribe([topics.EPOCHS])
        self.accounts = _consumer(settings, f"{group}.accounts.{settings.nnt_hostname}")
        self.accounts.assign(
            [
                TopicPartition(topics.ACCOUNTS, p, OFFSET_BEGINNING)
                for p in range(_parts(self.accounts))
            ]
        )

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        gone = {(tp.topic, tp.partition) for tp in partitions}
        for key in [k for k in self.held if k[:2] in gone]:
            del self.held[key]  # uncommitted: the partition's next owner gets it
        for key in [k for k in self.fetching if k[:2] in gone]:
            self.detached.append(self.fetching.pop(key))  # finished, but never committed here
        for part in gone:
            self.next.pop(part, None)
            self.committed.pop(part, None)
        if gone:
            log.info("partitions %s revoked: their waiting starts go to the next owner",
                     sorted(p for _, p in gone))  # fmt: skip

    def catch_up_accounts(self, timeout: float = 30.0) -> None:
        """Read every account record there is (before acting on any command, and when a
        command names an account or key not seen yet)."""
        ends = {}
        for p in range(_parts(self.accounts)):
            where = TopicPartition(topics.ACCOUNTS, p)
            low, high = self.accounts.get_watermark_offsets(where, timeout=10)
            at = self.accounts.position([where])[0].offset
            if high > max(low, at):
                ends[p] = high
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            msg = self.accounts.poll(0.2)
            if _ok(msg):
                assert msg is not None
                self.orch.accounts.apply(msg.value())
                part, offset = int(msg.partition() or 0), int(msg.offset() or 0)
                if offset + 1 >= ends.get(part, 0):
                    ends.pop(part, None)
        log.debug("%d account(s) known", len(self.orch.accounts.by_id))

    def _read_accounts(self) -> None:
        for msg in self.accounts.consume(200, 0):
            if _ok(msg):
                self.orch.accounts.apply(msg.value())

    def step(self) -> None:
        """One round: account changes, a work message, finished downloads, held starts, a
        broadcast, the tick."""
        self._read_accounts()
        msg = self.work.poll(0.1)
        if _ok(msg):
            assert msg is not None
            self._work(msg)
        self._finish_downloads()
        self._retry_held()
        msg = self.broadcast.poll(0.1)
        if _ok(msg):
            assert msg is not None
            self.orch.on_broadcast(msg.value(), _stored_at(msg))
            self.broadcast.commit(message=msg, asynchronous=False)
        try:
            for event in self.epochs.consume(200, 0):
                if _ok(event):
                    self.orch.on_epoch(event.value())
            self.orch.tick()
        except Exception:  # noqa: BLE001 - the service logs per run; this is the last net
            log.exception("watching runs failed; continuing")

    def _work(self, msg: Message) -> None:
        key: Key = (str(msg.topic()), int(msg.partition() or 0), int(msg.offset() or 0))
        self.next[key[:2]] = key[2] + 1
        result = self.orch.on_work(msg.value(), _stored_at(msg))
        if isinstance(result, Deferred):
            self.fetching[key] = (self._in_thread(result.run), result)
        elif result is False:
            self.held[key] = msg  # no pause: the partition's other commands go on
        self._commit(key[:2])

    def _finish_downloads(self) -> None:
        for key, (future, deferred) in list(self.fetching.items()):
            if future.done():
                del self.fetching[key]
                deferred.finish(_outcome(future))
                self._commit(key[:2])
        for future, deferred in list(self.detached):
            if future.done():
                self.detached.remove((future, deferred))
                deferred.finish(_outcome(future))

    def _retry_held(self) -> None:
        """Offer held starts a slot again, oldest first: every second, or at once when one frees."""
        load = len(self.orch.handles)
        freed, self.last_load = load < self.last_load, load
        due = freed or time.monotonic() - self.last_retry > RETRY_S
        if not self.held or not due:
            return
        self.last_retry = time.monotonic()
        for key, msg in list(self.held.items()):
            if not self.orch.has_slot():
                break
            if self.orch.on_work(msg.value(), _stored_at(msg)) is not False:
                self.held.pop(key, None)
                self._commit(key[:2])

    def _commit(self, part: Part) -> None:
        """Commit up to the oldest message of `part` still held or fetching (else all handled)."""
        if part not in self.next:
            return  # revoked meanwhile
        open_ = [k[2] for k in (*self.held, *self.fetching) if k[:2] == part]
        upto = min(open_) if open_ else self.next[part]
        if upto <= self.committed.get(part, -1):
            return
        try:
            self.work.commit(offsets=[TopicPartition(*part, upto)], asynchronous=False)
        except KafkaException as exc:
            log.warning("commit of partition %d failed (retried later): %s", part[1], exc)
            return
        self.committed[part] = upto

    def _in_thread(self, work: Callable[[], object]) -> Future[object]:
        """Run `work` on a daemon thread (a download in flight never delays shutdown)."""
        future: Future[object] = Future()

        def target() -> None:
            with self.downloads:  # at most FETCH_THREADS downloads at once; the rest wait
                try:
                    future.set_result(work())
                except BaseException as exc:  # noqa: BLE001 - handed back to the loop
                    future.set_exception(exc)

        threading.Thread(target=target, name="nnt-fetch", daemon=True).start()
        return future

    def close(self) -> None:
        """Leave the groups (the shared one hands our held starts and downloads to others)."""
        for consumer in (self.work, self.broadcast, self.epochs, self.accounts):
            consumer.close()


def _parts(consumer: Consumer) -> int:
    """Partitions of nnt.accounts (the topic exists: `up` and the tests create every topic)."""
    meta = consumer.list_topics(topics.ACCOUNTS, timeout=10).topics.get(topics.ACCOUNTS)
    return len(meta.partitions) if meta is not None and meta.partitions else 1


def _stored_at(msg: Message) -> datetime | None:
    """When Kafka stored the message (LogAppendTime on nnt.commands), for the replay check."""
    kind, millis = msg.timestamp()
    if kind == TIMESTAMP_NOT_AVAILABLE or millis <= 0:
        return None
    return datetime.fromtimestamp(millis / 1000, UTC)


def _outcome(future: Future[object]) -> object:
    """What the work returned, or the exception it raised."""
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - handed to `finish`, which answers the command
        return exc


def run(settings: OrchestratorSettings, runtime: Runtime) -> None:
    """Consume commands until SIGTERM/SIGINT."""
    key = auth.service_key(settings.command_secret(), "orchestrator")
    publisher = StatusPublisher(settings.nnt_kafka_bootstrap, settings, key)
    orch = Orchestrator(settings, runtime, publisher)
    orch.reconcile()
    loop = Loop(settings, orch)
    loop.catch_up_accounts()
    orch.guard.refresh = lambda: loop.catch_up_accounts(timeout=5.0)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log.info(
        "orchestrator %s ready (group %s, runtime %s, %d slot(s))",
        settings.nnt_hostname, settings.nnt_orchestrator_group, runtime.name, settings.nnt_max_runs,
    )  # fmt: skip
    try:
        while not stopping.is_set():
            loop.step()
    finally:
        log.info("orchestrator stopping with %d run(s)", len(orch.handles))
        loop.close()
        orch.shutdown()
