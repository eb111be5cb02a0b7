"""Every Kafka producer of the product is idempotent, waits for acks=all and logs in with the
NNT_KAFKA_* security settings (schemas.kafkaauth).

The source of every package is scanned for producer constructions (confluent-kafka
`Producer`, aiokafka `AIOKafkaProducer`, a Faust app), so a new producer fails
test_it_knows_every_producer_in_the_source until it is listed in PRODUCERS and its settings
are checked below like the others.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import certifi
import pytest

from schemas import kafkaauth

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "trainer", "orchestrator", "stream_processors", "web", "infra")
# Calls that construct a producer: any name ending in "Producer", and Faust apps.
APPS = {"App", "StreamApp"}
# (file, constructor) of every producer; each has a settings check below.
PRODUCERS = {
    ("trainer/publisher.py", "Producer"),
    ("orchestrator/publisher.py", "Producer"),
    ("web/simulations/commands.py", "Producer"),
    ("web/live/notify.py", "Producer"),
    ("web/accounts/records.py", "Producer"),
    ("stream_processors/app.py", "StreamApp"),
    ("stream_processors/app.py", "IdempotentProducer"),
}


def constructions(path: Path) -> set[str]:
    """Producer and app constructors a file calls (`Producer(...)`, `faust.App(...)`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name.endswith("Producer") or name in APPS:
                found.add(name)
    return found


def test_it_knows_every_producer_in_the_source() -> None:
    found = {
        (str(path.relative_to(ROOT)), name)
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for name in constructions(path)
    }
    assert found == PRODUCERS, "a new Kafka producer: add it to PRODUCERS and check its settings"


class Recorder:
    """Stands in for confluent_kafka.Producer and keeps the configuration it was given."""

    configs: list[dict[str, Any]] = []

    def __init__(self, config: dict[str, Any]) -> None:
        Recorder.configs.append(dict(config))


# A SASL_SSL deployment's environment, and what librdkafka must be given for it.
SECURE_ENV = {
    "NNT_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "NNT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
    "NNT_KAFKA_SASL_USERNAME": "nnt-producer",
    "NNT_KAFKA_SASL_PASSWORD": "producer-secret",
    "NNT_KAFKA_SSL_CAFILE": certifi.where(),
}
SECURE_CONFIG = {
    "security.protocol": "SASL_SSL",
    "sasl.mechanisms": "SCRAM-SHA-256",
    "sasl.username": "nnt-producer",
    "sasl.password": "producer-secret",
    "ssl.ca.location": certifi.where(),
}


def assert_safe(config: dict[str, Any]) -> None:
    """librdkafka: acks=all, enable.idempotence=true and the deployment's credentials."""
    assert str(config.get("acks")) in ("all", "-1"), config
    assert config.get("enable.idempotence") is True, config
    assert {k: config.get(k) for k in SECURE_CONFIG} == SECURE_CONFIG


@pytest.fixture()
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import confluent_kafka

    for name, value in SECURE_ENV.items():
        monkeypatch.setenv(name, value)
    Recorder.configs = []
    monkeypatch.setattr(confluent_kafka, "Producer", Recorder)
    return Recorder.configs


def test_the_trainer_producer_is_idempotent_with_acks_all(recorded: list[dict[str, Any]]) -> None:
    from trainer.publisher import KafkaPublisher

    KafkaPublisher("127.0.0.1:9")
    [config] = recorded
    assert_safe(config)


def test_the_orchestrator_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator import publisher

    monkeypatch.setattr(publisher, "Producer", Recorder)
    publisher.StatusPublisher("127.0.0.1:9", kafkaauth.load())
    [config] = recorded
    assert_safe(config)


def test_the_web_command_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]],
) -> None:
    from web.simulations.commands import KafkaPublisher

    KafkaPublisher("127.0.0.1:9", 1.0, kafkaauth.load())
    [config] = recorded
    assert_safe(config)


def test_the_web_live_row_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.live import notify

    monkeypatch.setattr(
        notify,
        "settings",
        SimpleNamespace(NNT_KAFKA_BOOTSTRAP="127.0.0.1:9", NNT_KAFKA_SECURITY=kafkaauth.load()),
    )
    monkeypatch.setattr(notify, "_producer", None)
    notify._live_producer()
    [config] = recorded
    assert_safe(config)


def test_the_web_account_records_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.accounts import records

    monkeypatch.setattr(
        records,
        "settings",
        SimpleNamespace(NNT_KAFKA_BOOTSTRAP="127.0.0.1:9", NNT_KAFKA_SECURITY=kafkaauth.load()),
    )
    records._Sender()
    [config] = recorded
    assert_safe(config)


def test_the_stream_processors_producer_is_idempotent_with_acks_all(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nnt:nnt@127.0.0.1:9/nnt")
    monkeypatch.setenv("NNT_HOME", str(tmp_path))
    app = importlib.import_module("stream_processors.app").app
    producer = app.producer
    # What Faust hands to aiokafka.AIOKafkaProducer (no connection is made here).
    config = {**producer._settings_default(), **producer._settings_extra()}
    assert config["acks"] in ("all", -1), config
    assert config["enable_idempotence"] is True, config
    assert app.conf.producer_acks == -1


# What the worker's Faust producer hands aiokafka for authentication (its consumer gets the
# same from app.conf), printed by a worker process started with SECURE_ENV.
AUTH_PROBE = """
import json
from stream_processors.app import app
auth = dict(app.producer._settings_auth())
auth["ssl_context"] = type(auth["ssl_context"]).__name__
print(json.dumps(auth))
"""


def test_the_stream_processors_producer_logs_in_with_the_kafka_settings(tmp_path: Path) -> None:
    env = {
        **os.environ,
        **SECURE_ENV,
        "DATABASE_URL": "postgresql://nnt:nnt@127.0.0.1:9/nnt",
        "NNT_HOME": str(tmp_path),
    }
    out = subprocess.run(
        [sys.executable, "-c", AUTH_PROBE], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "nnt-producer",
        "sasl_plain_password": "producer-secret",
        "ssl_context": "SSLContext",
    }
