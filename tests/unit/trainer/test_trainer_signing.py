"""The trainer signs every message with its run key; a script without one is told how to get it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from schemas import auth, topics
from tests.unit.trainer.tiny import tiny_data, tiny_model
from trainer.errors import ConfigError

pytestmark = pytest.mark.unit


class Producer:
    """Stands in for confluent_kafka.Producer and keeps what it was asked to send."""

    sent: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        Producer.sent = []

    def produce(self, topic: str, **message: Any) -> None:
        Producer.sent.append({"topic": topic, **message})

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


@pytest.fixture()
def producer(monkeypatch: pytest.MonkeyPatch) -> type[Producer]:
    import confluent_kafka

    monkeypatch.setattr(confluent_kafka, "Producer", Producer)
    Producer.sent = []
    monkeypatch.delenv("NNT_RUN_KEY", raising=False)
    return Producer


def test_the_trainer_signs_every_message_with_the_run_key_from_its_environment(
    producer: type[Producer], monkeypatch: pytest.MonkeyPatch
) -> None:
    from trainer.publisher import KafkaPublisher

    key = auth.run_key("secret", uuid.uuid4())
    monkeypatch.setenv("NNT_RUN_KEY", key)  # what the orchestrator gives each run
    publisher = KafkaPublisher("127.0.0.1:9")
    publisher.send(topics.EPOCHS, b"k", b'{"epoch": 1}')
    publisher.send(topics.TENSORS, b"k", b"\x00binary chunk")
    assert [m["headers"] for m in producer.sent] == [
        [(auth.SIGNATURE_HEADER, auth.mac(key, b'{"epoch": 1}').encode())],
        [(auth.SIGNATURE_HEADER, auth.mac(key, b"\x00binary chunk").encode())],
    ]


def test_a_publisher_without_a_key_sends_unsigned(producer: type[Producer]) -> None:
    from trainer.publisher import KafkaPublisher

    KafkaPublisher("127.0.0.1:9").send(topics.EPOCHS, b"k", b"{}")
    assert producer.sent[0]["headers"] is None


def test_the_sdk_callback_signs_what_it_sends_for_its_run(producer: type[Producer]) -> None:
    from trainer.sdk import CollectSpec, TrackerCallback

    sid = uuid.uuid4()
    key = auth.run_key("secret", sid)
    model, (x, y) = tiny_model(), tiny_data()
    tracker = TrackerCallback(simulation_id=sid, run_key=key, probe=(x, y),
                              collect=CollectSpec(activations=False))  # fmt: skip
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[tracker])
    topics_sent = {m["topic"] for m in producer.sent}
    assert topics_sent == {topics.EPOCHS, topics.TENSORS, topics.STATUS}
    for message in producer.sent:
        [(name, sig)] = message["headers"]
        assert name == auth.SIGNATURE_HEADER
        assert auth.matches(key, message["value"], sig.decode()), message["topic"]
        assert message["key"] == str(sid).encode()


def test_the_sdk_callback_without_a_run_key_says_how_to_get_one(producer: type[Producer]) -> None:
    from trainer.sdk import TrackerCallback

    with pytest.raises(ConfigError, match=r"^run_key: .*POST /api/sdk-runs"):
        TrackerCallback(simulation_name="my run")
    with pytest.raises(ConfigError, match=r"^simulation_id: "):
        TrackerCallback(simulation_name="my run", run_key="ab" * 32)
    assert producer.sent == []
