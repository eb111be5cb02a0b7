"""Events out of the orchestrator: status, resources and its own `start` commands (one producer)."""

from __future__ import annotations

import logging
import uuid
from typing import Any, Protocol

from confluent_kafka import Producer

from schemas import auth, codecs, topics
from schemas.commands import LifecycleCommand, command_key
from schemas.kafkaauth import KafkaSecurity
from schemas.resources import ResourceSample
from schemas.status import Status, StatusEvent

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where the orchestrator's events go."""

    def status(self, simulation_id: uuid.UUID | None, status: Status, **fields: Any) -> None: ...
    def resources(self, sample: ResourceSample) -> None: ...
    def command(self, command: LifecycleCommand) -> None: ...
    def flush(self, timeout: float = 10.0) -> None: ...


class StatusPublisher:
    """Publishes StatusEvents, ResourceSamples and commands, each keyed by simulation id."""

    def __init__(self, bootstrap: str, security: KafkaSecurity, service_key: str = "") -> None:
        self.service_key = service_key  # signs its commands (`start`), statuses and samples
        self.producer = Producer(topics.producer_config(bootstrap, security, {"linger.ms": 5}))

    def status(self, simulation_id: uuid.UUID | None, status: Status, **fields: Any) -> None:
        """Send one status event; the key keeps one simulation's events in order."""
        event = StatusEvent(
            simulation_id=simulation_id, status=status, source="orchestrator", **fields
        )
        key, value = topics.key_of(simulation_id), codecs.dumps(event)
        # Signed as this service: the stream workers store statuses only from a run's trainer
        # or from an orchestrator (schemas/auth.py).
        self.producer.produce(topics.STATUS, key=key, value=value, headers=self._signed(value))
        self.producer.poll(0)
        log.info("simulation %s: %s %s", simulation_id, status, fields.get("message", ""))

    def resources(self, sample: ResourceSample) -> None:
        """Send one resource sample, signed as this service (the stream workers store samples
        only from an orchestrator: a run cannot report its own use)."""
        key, value = topics.key_of(sample.simulation_id), codecs.dumps(sample)
        self.producer.produce(topics.RESOURCES, key=key, value=value, headers=self._signed(value))
        self.producer.poll(0)

    def _signed(self, value: bytes) -> list[tuple[str, str | bytes | None]] | None:
        """The `nnt-sig` header of an event this service sends (none without a key)."""
        if not self.service_key:
            return None
        return [(auth.SIGNATURE_HEADER, auth.mac(self.service_key, value).encode())]

    def command(self, command: LifecycleCommand) -> None:
        """Put a command on `nnt.commands` (the shared group hands `start` to one member),
        signed as this service."""
        if self.service_key:
            command = command.signed("service:orchestrator", self.service_key)
        self.producer.produce(
            topics.COMMANDS, key=command_key(command), value=codecs.dumps(command)
        )
        self.producer.poll(0)

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event is acknowledged by the broker."""
        self.producer.flush(timeout)
