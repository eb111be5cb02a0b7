"""Status and resource events out of the orchestrator (one confluent-kafka producer)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from confluent_kafka import Producer

from schemas import codecs, topics
from schemas.status import StatusEvent

log = logging.getLogger(__name__)


class StatusPublisher:
    """Publishes StatusEvents keyed by simulation id."""

    def __init__(self, bootstrap: str) -> None:
        self.producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.max.bytes": topics.MAX_MESSAGE_BYTES,
            }
        )

    def status(self, simulation_id: uuid.UUID | None, status: str, **fields: Any) -> None:
        """Send one status event; the key keeps one simulation's events in order."""
        event = StatusEvent(
            simulation_id=simulation_id, status=status, source="orchestrator", **fields
        )
        key = str(simulation_id).encode() if simulation_id else None
        self.producer.produce(topics.STATUS, key=key, value=codecs.dumps(event))
        self.producer.poll(0)
        log.info("simulation %s: %s %s", simulation_id, status, fields.get("message", ""))

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until every event is acknowledged by the broker."""
        self.producer.flush(timeout)
