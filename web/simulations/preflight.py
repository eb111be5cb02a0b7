"""Pre-flight at submit: ask the orchestrators to try the experiment on one batch, and wait.

The web has no TensorFlow and never touches the runtime: it sends a `check` command on
`nnt.commands` and reads the answer naming that command on `nnt.status`. A rejection becomes
a 422 with per-field errors (the form shows each next to its field), so a mistake is never
N failed runs.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Protocol

from django.conf import settings
from pydantic import ValidationError

from schemas import topics
from schemas.codecs import loads
from schemas.commands import CheckCommand
from schemas.status import StatusEvent
from web.errors import Invalid, KafkaUnavailable, PreflightUnavailable
from web.simulations import commands

log = logging.getLogger(__name__)
POLL_S = 0.25


class Checker(Protocol):
    """Sends a `check` and returns its answer (`accepted` or `rejected`), or raises."""

    def ask(self, command: CheckCommand, timeout_s: float) -> StatusEvent:
        """Publish the command and wait for the status event that answers it."""


class KafkaChecker:
    """Listens on every partition of nnt.status from its end, then publishes the check."""

    def ask(self, command: CheckCommand, timeout_s: float) -> StatusEvent:
        """The answer naming `command.command_id`, or PreflightUnavailable after `timeout_s`."""
        consumer = self._listen()
        try:
            commands.publish(command)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                msg = consumer.poll(POLL_S)
                answer = _answer(msg, command) if msg is not None and not msg.error() else None
                if answer is not None:
                    return answer
        finally:
            consumer.close()
        raise PreflightUnavailable(
            f"no orchestrator answered the pre-flight check within {timeout_s:g} s; nothing "
            "was created. Is an orchestrator running? Try again"
        )

    def _listen(self) -> Any:
        from confluent_kafka import Consumer, KafkaException, TopicPartition

        timeout = settings.NNT_KAFKA_TIMEOUT_S
        consumer = Consumer(
            {
                "bootstrap.servers": settings.NNT_KAFKA_BOOTSTRAP,
                "group.id": topics.WEB_PREFLIGHT_GROUP,  # never joined: partitions are assigned
                "enable.auto.commit": False,
                "logger": logging.getLogger("web.kafka"),
                **settings.NNT_KAFKA_SECURITY.confluent_config(),
            }
        )
        try:
            meta = consumer.list_topics(topics.STATUS, timeout=timeout)
            parts = list(meta.topics[topics.STATUS].partitions)
            ends = [
                consumer.get_watermark_offsets(TopicPartition(topics.STATUS, p), timeout)[1]
                for p in parts
            ]
        except (KafkaException, KeyError, TypeError) as exc:
            consumer.close()
            raise KafkaUnavailable(
                f"Kafka at {settings.NNT_KAFKA_BOOTSTRAP} did not answer ({exc}); nothing "
                "was created, try again"
            ) from None
        consumer.assign(
            [TopicPartition(topics.STATUS, p, e) for p, e in zip(parts, ends, strict=True)]
        )
        return consumer


def _answer(msg: Any, command: CheckCommand) -> StatusEvent | None:
    try:
        event = loads(StatusEvent, msg.value() or b"")
    except ValidationError:
        return None
    if event.command_id == command.command_id and event.status in ("accepted", "rejected"):
        return event
    return None


_lock = threading.Lock()
_checker: Checker | None = None


def get_checker() -> Checker:
    """The process-wide checker, created on first use."""
    global _checker
    with _lock:
        if _checker is None:
            _checker = KafkaChecker()
        return _checker


def set_checker(checker: Checker | None) -> None:
    """Replace the checker (tests inject one; None resets to Kafka)."""
    global _checker
    with _lock:
        _checker = checker


def preflight(command: CheckCommand) -> list[str]:
    """Notes of a passed check; Invalid (422) with per-field errors when it failed.

    Off (NNT_PREFLIGHT=false), nothing is asked and the orchestrator checks at `create`.
    """
    if not settings.NNT_PREFLIGHT:
        return []
    answer = get_checker().ask(command, settings.NNT_PREFLIGHT_TIMEOUT_S)
    if answer.status == "rejected":
        errors = answer.errors or {"__all__": answer.message}
        log.info("experiment %s refused at pre-flight: %s", command.experiment_id, errors)
        raise Invalid(f"the experiment would fail: {answer.message}", errors)
    return list(answer.notes or [])
