"""Accounts for the orchestrators: one record per user on the compacted topic `nnt.accounts`.

The orchestrators enforce limits and check command keys from these records (schemas/accounts.py),
so every change that matters to them is published: a user created, disabled, made staff,
deleted, their limits changed or their key revoked. Publishing never blocks a request or
fails it: the records are sent in the background (and all of them again when the web starts),
so a broker that is down for a while only delays them.
"""

from __future__ import annotations

import atexit
import logging
import threading
from typing import Any

from django.conf import settings

from schemas import topics
from schemas.accounts import AccountRecord, Limits
from schemas.codecs import dumps

log = logging.getLogger(__name__)
FLUSH_AT_EXIT_S = 5.0


def record_of(user: Any) -> AccountRecord:
    """What the orchestrators need of one account."""
    from web.accounts import keys, quotas  # models: only once Django is set up

    limits = quotas.effective(user)
    return AccountRecord(
        user_id=user.pk,
        username=user.get_username(),
        is_active=user.is_active,
        is_staff=user.is_staff,
        key_generation=keys.generation(user),
        limits=Limits(
            max_concurrent_runs=limits.max_concurrent_runs,
            max_memory_bytes=limits.max_memory_bytes,
            max_queued_runs=limits.max_queued_runs,
            max_runs_per_experiment=limits.max_runs_per_experiment,
            max_epochs=limits.max_epochs,
            max_storage_bytes=limits.max_storage_bytes,
            max_run_memory_bytes=limits.max_run_memory_bytes,
            max_run_cpus=limits.max_run_cpus,
        ),
    )


class _Sender:
    """A producer that never waits: deliveries are polled in the background, flushed at exit."""

    def __init__(self) -> None:
        from confluent_kafka import Producer

        self.producer = Producer(
            topics.producer_config(
                settings.NNT_KAFKA_BOOTSTRAP,
                settings.NNT_KAFKA_SECURITY,
                {"logger": logging.getLogger("web.kafka")},
            )
        )
        atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """Deliver what is queued before the process ends (a `manage` command's records).

        librdkafka's log lines and the delivery reports go to Python logging, whose streams
        may already be closed at exit: they are dropped here rather than printed as logging
        errors (an undelivered record is sent again when the web next starts).
        """
        logging.getLogger("web.kafka").disabled = True
        log.disabled = True
        self.flush(FLUSH_AT_EXIT_S)  # what is left is sent again when the web next starts

    def flush(self, timeout: float) -> int:
        """Wait for queued records; the number still undelivered."""
        flush = getattr(self.producer, "flush", None)  # a test's stand-in may have none
        left: int = flush(timeout) if flush is not None else 0
        return left

    def send(self, key: bytes, value: bytes | None) -> None:
        def delivered(err: object, _msg: object) -> None:
            if err is not None:
                log.warning("an account record was not delivered to Kafka: %s", err)

        try:
            self.producer.produce(topics.ACCOUNTS, key=key, value=value, on_delivery=delivered)
            self.producer.poll(0)
        except (BufferError, Exception) as exc:  # noqa: BLE001 - never fail a request for it
            log.warning("could not queue an account record: %s", exc)


_lock = threading.Lock()
_sender: _Sender | None = None


def _get() -> _Sender:
    global _sender
    with _lock:
        if _sender is None:
            _sender = _Sender()
        return _sender


def publish(user: Any) -> None:
    """Send the account's current record."""
    _get().send(str(user.pk).encode(), dumps(record_of(user)))


def publish_deleted(user_id: int, username: str) -> None:
    """Tell the orchestrators an account is gone (it owns nothing and may do nothing)."""
    record = AccountRecord(user_id=user_id, username=username, is_active=False, deleted=True)
    _get().send(str(user_id).encode(), dumps(record))


def publish_all() -> int:
    """Send every account's record (at start: covers changes made while Kafka was away)."""
    from django.contrib.auth import get_user_model

    users = list(get_user_model().objects.all())
    for user in users:
        publish(user)
    return len(users)


def flush(timeout: float = FLUSH_AT_EXIT_S) -> int:
    """Wait for queued records; the number still undelivered."""
    return _get().flush(timeout) if _sender is not None else 0
