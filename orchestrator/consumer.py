"""The Kafka side: three consumers feeding one Orchestrator, offsets committed after the work.

- shared group (`NNT_ORCHESTRATOR_GROUP`): `create` and `start`. A `start` offset is committed
  only once the run has started; with no free slot the partition is paused and the message
  held, so if this orchestrator dies the group hands its not-yet-started runs to another member.
- per-host group (`<group>.host.<hostname>`): every lifecycle command, acted on by the owner.
- per-host group on `nnt.epochs`: progress and NaN watching of this host's runs.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from orchestrator.publisher import StatusPublisher
from orchestrator.runtime import Runtime
from orchestrator.service import Orchestrator
from orchestrator.settings import OrchestratorSettings
from schemas import topics

log = logging.getLogger(__name__)
RETRY_S = 1.0


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
    """One orchestrator process's consumers and its held `start` messages."""

    def __init__(self, settings: OrchestratorSettings, orch: Orchestrator) -> None:
        self.settings, self.orch = settings, orch
        group = settings.nnt_orchestrator_group
        self.work = _consumer(settings, group)
        self.broadcast = _consumer(settings, f"{group}.host.{settings.nnt_hostname}")
        self.epochs = _consumer(
            settings, f"{group}.host.{settings.nnt_hostname}.epochs",
            **{"enable.auto.commit": True, "auto.offset.reset": "latest"},
        )  # fmt: skip
        self.held: dict[tuple[str, int], Message] = {}
        self.last_retry = 0.0
        self.work.subscribe([topics.COMMANDS], on_revoke=self._revoked)
        self.broadcast.subscribe([topics.COMMANDS])
        self.epochs.subscribe([topics.EPOCHS])

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            if self.held.pop((tp.topic, tp.partition), None) is not None:
                # librdkafka keeps a partition's pause flag across assignments: clear it, or a
                # partition that comes back to us would never be fetched again.
                consumer.resume([TopicPartition(tp.topic, tp.partition)])
                log.info(
                    "partition %d revoked: its waiting start goes to another member", tp.partition
                )

    def step(self) -> None:
        """One round: a work message, held starts, a broadcast message, epochs, the tick."""
        msg = self.work.poll(0.1)
        if _ok(msg):
            assert msg is not None
            self._work(msg)
        if self.held and time.monotonic() - self.last_retry > RETRY_S:
            self.last_retry = time.monotonic()
            for held in list(self.held.values()):
                self._work(held)
        msg = self.broadcast.poll(0.1)
        if _ok(msg):
            assert msg is not None
            self.orch.on_broadcast(msg.value())
            self.broadcast.commit(message=msg, asynchronous=False)
        for event in self.epochs.consume(200, 0):
            if _ok(event):
                self.orch.on_epoch(event.value())
        self.orch.tick()

    def _work(self, msg: Message) -> None:
        key = (str(msg.topic()), int(msg.partition() or 0))
        tp = TopicPartition(*key)
        if self.orch.on_work(msg.value()):
            self.work.commit(message=msg, asynchronous=False)
            if self.held.pop(key, None) is not None:
                self.work.resume([tp])
        elif key not in self.held:
            self.held[key] = msg
            self.work.pause([tp])  # nothing more from this partition until a slot frees

    def close(self) -> None:
        """Leave the groups (the shared one rebalances our held starts to the others)."""
        for consumer in (self.work, self.broadcast, self.epochs):
            consumer.close()


def run(settings: OrchestratorSettings, runtime: Runtime) -> None:
    """Consume commands until SIGTERM/SIGINT."""
    publisher = StatusPublisher(settings.nnt_kafka_bootstrap)
    orch = Orchestrator(settings, runtime, publisher)
    orch.reconcile()
    loop = Loop(settings, orch)
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
