"""Publishing commands to `nnt.commands`: the one place the web produces to Kafka."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import Any, Protocol

from django.conf import settings

from schemas import topics
from schemas.codecs import dumps
from schemas.commands import AnyCommand, CheckCommand, CreateCommand, command_key
from schemas.experiment import ExperimentConfig
from schemas.kafkaauth import KafkaSecurity
from web.errors import KafkaUnavailable

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """Anything that delivers one message or raises KafkaUnavailable."""

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Deliver and wait for the acknowledgement."""


def producer_config(bootstrap: str, timeout_s: float, security: KafkaSecurity) -> dict[str, Any]:
    """The web's producer settings: the product's (schemas.topics), giving up after `timeout_s`."""
    timeout_ms = int(timeout_s * 1000)
    return topics.producer_config(
        bootstrap,
        security,
        {
            "message.timeout.ms": timeout_ms,
            "socket.connection.setup.timeout.ms": max(1000, timeout_ms),
            "logger": logging.getLogger("web.kafka"),
        },
    )


class KafkaPublisher:
    """confluent-kafka producer that waits for delivery, bounded by a timeout."""

    def __init__(self, bootstrap: str, timeout_s: float, security: KafkaSecurity) -> None:
        from confluent_kafka import Producer

        self.bootstrap = bootstrap
        self.timeout_s = timeout_s
        self.producer = Producer(producer_config(bootstrap, timeout_s, security))

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        """Produce one message; raise KafkaUnavailable unless Kafka acknowledged it."""
        errors: list[str] = []

        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                errors.append(str(err))

        self.producer.produce(topic, key=key, value=value, on_delivery=delivered)
        left = self.producer.flush(self.timeout_s)
        if left:
            self.producer.purge()  # never deliver late a command the caller saw fail
            self.producer.flush(0)
            raise KafkaUnavailable(
                f"Kafka at {self.bootstrap} did not answer "
                f"within {self.timeout_s:g}s; nothing was created, try again"
            )
        if errors:
            raise KafkaUnavailable(f"Kafka refused the command: {errors[0]}")


_lock = threading.Lock()
_publisher: Publisher | None = None


def get_publisher() -> Publisher:
    """The process-wide publisher, created on first use."""
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = KafkaPublisher(
                settings.NNT_KAFKA_BOOTSTRAP,
                settings.NNT_KAFKA_TIMEOUT_S,
                settings.NNT_KAFKA_SECURITY,
            )
        return _publisher


def set_publisher(publisher: Publisher | None) -> None:
    """Replace the publisher (tests inject a fake; None resets to Kafka)."""
    global _publisher
    with _lock:
        _publisher = publisher


def create_command(
    experiment_id: uuid.UUID, config: ExperimentConfig, model: dict[str, Any], username: str
) -> CreateCommand:
    """The `create` command: the validated configuration plus the model JSON under `model`."""
    experiment = config.model_dump(mode="json") | {"model": model}
    return CreateCommand(experiment_id=experiment_id, experiment=experiment, issued_by=username)


def check_command(create: CreateCommand) -> CheckCommand:
    """The pre-flight of a `create`: the same experiment, so a pass there is a pass here
    (unsigned: sign it with web.accounts.keys.sign)."""
    return CheckCommand(
        experiment_id=create.experiment_id, experiment=create.experiment, issued_by=create.issued_by
    )


def publish(command: AnyCommand) -> None:
    """Send one command keyed by its experiment or simulation id."""
    get_publisher().publish(topics.COMMANDS, command_key(command), dumps(command))
    ident = getattr(command, "simulation_id", None) or getattr(command, "experiment_id", "")
    log.info("published %s command %s for %s", command.type, command.command_id, ident)
