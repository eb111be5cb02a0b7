"""One message key for every producer (a simulation's or experiment's id as text), one
spelling of every group name, one set of producer defaults."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path

from schemas import topics
from schemas.commands import CreateCommand, LifecycleCommand, command_key
from schemas.kafkaauth import KafkaSecurity
from trainer import publisher

SIM = uuid.UUID("2f1c6e0a-8a4b-4c3e-9d2f-0b7a1e5c9d44")
ROOT = Path(__file__).resolve().parents[3]


def test_it_keys_a_simulation_by_its_id_as_text_like_kcat_reads_it() -> None:
    assert topics.key_of(SIM) == b"2f1c6e0a-8a4b-4c3e-9d2f-0b7a1e5c9d44"
    assert topics.key_of(str(SIM)) == topics.key_of(SIM)
    assert topics.key_of("my-tag") == b"my-tag"


def test_it_sends_a_message_without_a_simulation_keyless() -> None:
    assert topics.key_of(None) is None


def test_commands_and_the_trainer_use_the_same_key() -> None:
    pause = LifecycleCommand(type="pause", simulation_id=SIM, issued_by="ana")
    assert command_key(pause) == topics.key_of(SIM)
    create = CreateCommand(experiment_id=SIM, issued_by="ana", experiment={})
    assert command_key(create) == topics.key_of(SIM)
    assert publisher.key_of is topics.key_of
    sent = publisher.MemoryPublisher()
    publisher.send_event(sent, topics.STATUS, SIM, pause)
    assert sent.messages[0][1] == b"2f1c6e0a-8a4b-4c3e-9d2f-0b7a1e5c9d44"


def test_every_producer_starts_from_the_same_safe_defaults() -> None:
    plain = topics.producer_config(
        "kafka:9092", KafkaSecurity(nnt_kafka_security_protocol="PLAINTEXT")
    )
    assert plain == {
        "bootstrap.servers": "kafka:9092",
        "acks": "all",
        "enable.idempotence": True,
        "message.max.bytes": topics.MAX_MESSAGE_BYTES,
    }
    sasl = KafkaSecurity(
        nnt_kafka_security_protocol="SASL_PLAINTEXT",
        nnt_kafka_sasl_mechanism="SCRAM-SHA-256",
        nnt_kafka_sasl_username="nnt-trainer",
        nnt_kafka_sasl_password="secret",
    )
    tuned = topics.producer_config("kafka:9092", sasl, {"linger.ms": 20, "client.id": "run"})
    assert (tuned["security.protocol"], tuned["sasl.username"]) == ("SASL_PLAINTEXT", "nnt-trainer")
    assert (tuned["linger.ms"], tuned["client.id"], tuned["acks"]) == (20, "run", "all")


def test_the_stream_workers_own_topics_start_with_their_group() -> None:
    # The ACLs grant the stream principal every topic under this prefix (infra/kafkaacl.py).
    assert topics.TAG_POINTS.startswith(f"{topics.STREAM_GROUP}-")
    assert topics.TAG_POINTS not in topics.ALL_TOPICS, "internal: not provisioned for clients"
    names = (topics.STREAM_GROUP, topics.ORCHESTRATOR_GROUP, topics.WEB_PREFLIGHT_GROUP)
    assert len(set(names)) == 3


def test_the_health_probe_asks_the_group_the_stream_workers_join() -> None:
    spec = importlib.util.spec_from_file_location(
        "nnt_docker_healthcheck", ROOT / "infra" / "docker" / "healthcheck.py"
    )
    assert spec and spec.loader
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.STREAM_GROUP == topics.STREAM_GROUP
