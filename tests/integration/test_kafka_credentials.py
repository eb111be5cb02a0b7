"""Kafka clients log in with the NNT_KAFKA_* credentials: real clients, the broker's SASL listener.

A confluent-kafka producer (trainer, orchestrator, web) and an aiokafka consumer (web bridge,
Faust) are built from schemas.kafkaauth exactly as the components build theirs.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaConnectionError
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from schemas import kafkaauth
from schemas.kafkaauth import KafkaSecurity
from tests.services import SASL_PASSWORD, SASL_USER

TIMEOUT_S = 15.0


def security(monkeypatch: pytest.MonkeyPatch, password: str) -> KafkaSecurity:
    """The settings a component reads from this environment."""
    monkeypatch.setenv("NNT_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("NNT_KAFKA_SASL_MECHANISM", "PLAIN")
    monkeypatch.setenv("NNT_KAFKA_SASL_USERNAME", SASL_USER)
    monkeypatch.setenv("NNT_KAFKA_SASL_PASSWORD", password)
    return kafkaauth.load()


def new_topic(bootstrap: str, auth: KafkaSecurity) -> str:
    """A fresh one-partition topic, created through the SASL listener."""
    name = f"nnt-test-credentials-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap, **auth.confluent_config()})
    admin.create_topics([NewTopic(name, num_partitions=1)])[name].result(timeout=TIMEOUT_S)
    return name


async def consume_one(bootstrap: str, topic: str, auth: KafkaSecurity) -> tuple[bytes, bytes]:
    """The first message of `topic`, read by an aiokafka consumer."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        request_timeout_ms=int(TIMEOUT_S * 1000),
        **auth.aiokafka_kwargs(),
    )
    try:
        await asyncio.wait_for(consumer.start(), TIMEOUT_S)
        message = await asyncio.wait_for(consumer.getone(), TIMEOUT_S)
    finally:
        await consumer.stop()
    return message.key or b"", message.value or b""


def test_it_exchanges_a_message_through_the_sasl_listener(
    kafka_sasl_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = security(monkeypatch, SASL_PASSWORD)
    topic = new_topic(kafka_sasl_bootstrap, auth)
    errors: list[object] = []
    producer = Producer(
        {"bootstrap.servers": kafka_sasl_bootstrap, "acks": "all", **auth.confluent_config()}
    )
    producer.produce(
        topic, key=b"run-1", value=b"epoch 1", on_delivery=lambda e, _: errors.append(e)
    )
    assert producer.flush(TIMEOUT_S) == 0
    assert errors == [None]
    assert asyncio.run(consume_one(kafka_sasl_bootstrap, topic, auth)) == (b"run-1", b"epoch 1")


def test_it_refuses_a_wrong_password_with_an_authentication_error(
    kafka_sasl_bootstrap: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    auth = security(monkeypatch, "not-the-password")
    failures: list[KafkaError] = []
    producer = Producer(
        {
            "bootstrap.servers": kafka_sasl_bootstrap,
            "message.timeout.ms": 5000,
            "error_cb": failures.append,
            **auth.confluent_config(),
        }
    )
    producer.produce("nnt.live", value=b"never delivered")
    producer.flush(TIMEOUT_S)
    assert failures and failures[0].code() == KafkaError._AUTHENTICATION, failures
    assert "Authentication failed" in failures[0].str()
    # aiokafka gives up bootstrapping at once and logs why (the web bridge logs and retries).
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
        asyncio.run(consume_one(kafka_sasl_bootstrap, "nnt.live", auth))
    assert "SaslAuthenticationFailed: Authentication failed" in caplog.text
