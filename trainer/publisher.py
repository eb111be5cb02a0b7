"""Where the trainer's events go: Kafka in production, memory in tests."""

from __future__ import annotations

import logging
import uuid
from typing import Protocol

from pydantic import BaseModel

from schemas import auth, codecs, epochs, kafkaauth, topics
from schemas.epochs import EpochEvent
from schemas.topics import key_of as key_of  # re-exported: trainer.callback keys its chunks
from trainer.settings import load_settings

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that can send keyed bytes to a topic and flush them."""

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Queue one message."""

    def flush(self, timeout: float = 30.0) -> int:
        """Deliver queued messages; return how many are still undelivered."""


def send_event(
    publisher: Publisher, topic: str, simulation_id: uuid.UUID, event: BaseModel
) -> None:
    """Serialise one event and send it keyed by its simulation: an epoch event in its binary
    form (schemas.epochs.encode), any other as JSON."""
    value = epochs.encode(event) if isinstance(event, EpochEvent) else codecs.dumps(event)
    publisher.send(topic, key_of(simulation_id), value)


class MemoryPublisher:
    """Keeps every message in a list; for tests and dry runs."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes]] = []

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Record one message."""
        self.messages.append((topic, key, value))

    def flush(self, timeout: float = 30.0) -> int:
        """Nothing to deliver."""
        return 0

    def on(self, topic: str) -> list[bytes]:
        """Values sent to one topic, in order."""
        return [value for t, _, value in self.messages if t == topic]


def signature_headers(run_key: str, value: bytes) -> list[tuple[str, str | bytes | None]]:
    """The Kafka headers that prove a message comes from the run holding `run_key`."""
    return [(auth.SIGNATURE_HEADER, auth.mac(run_key, value).encode())]


class KafkaPublisher:
    """confluent-kafka producer with the broker's message cap and idempotent delivery.

    Its credentials come from the NNT_KAFKA_* security variables (the orchestrator passes
    its own to every trainer); a bad one raises KafkaSecurityError naming it. With a run key
    (`run_key`, else NNT_RUN_KEY) every message carries the header `nnt-sig` = HMAC-SHA256 of
    its value: the stream workers store only events signed by their own run.
    """

    def __init__(
        self, bootstrap: str, client_id: str = "nnt-trainer", run_key: str | None = None
    ) -> None:
        from confluent_kafka import Producer

        security = kafkaauth.load()
        self.run_key = run_key if run_key is not None else load_settings().run_key
        if not self.run_key:
            log.warning(
                "no run key (NNT_RUN_KEY): the stream workers will dead-letter these events"
            )
        self.failed = 0
        self._producer = Producer(
            topics.producer_config(
                bootstrap,
                security,
                {"client.id": client_id, "linger.ms": 20, "queue.buffering.max.kbytes": 512 * 1024},
            )
        )

    def _delivered(self, err: object, msg: object) -> None:
        if err is not None:
            self.failed += 1
            log.error("kafka delivery failed: %s", err)

    def send(self, topic: str, key: bytes, value: bytes) -> None:
        """Queue one message (signed when there is a run key), waiting for room when the
        local queue is full."""
        headers = signature_headers(self.run_key, value) if self.run_key else None
        while True:
            try:
                self._producer.produce(
                    topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                break
            except BufferError:
                self._producer.poll(0.5)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Deliver everything queued; log what could not be delivered in time."""
        left = self._producer.flush(timeout)
        if left:
            log.error("%d kafka messages not delivered within %.0f s", left, timeout)
        return int(left)
