"""Every Kafka producer of the product is idempotent and waits for acks=all.

The source of every package is scanned for producer constructions (confluent-kafka
`Producer`, aiokafka `AIOKafkaProducer`, a Faust app), so a new producer fails
test_it_knows_every_producer_in_the_source until it is listed in PRODUCERS and its settings
are checked below like the others.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

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


def assert_safe(config: dict[str, Any]) -> None:
    """librdkafka: acks=all and enable.idempotence=true."""
    assert str(config.get("acks")) in ("all", "-1"), config
    assert config.get("enable.idempotence") is True, config


@pytest.fixture()
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    import confluent_kafka

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
    publisher.StatusPublisher("127.0.0.1:9")
    [config] = recorded
    assert_safe(config)


def test_the_web_command_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]],
) -> None:
    from web.simulations.commands import KafkaPublisher

    KafkaPublisher("127.0.0.1:9", 1.0)
    [config] = recorded
    assert_safe(config)


def test_the_web_live_row_producer_is_idempotent_with_acks_all(
    recorded: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from web.live import notify

    monkeypatch.setattr(notify, "settings", SimpleNamespace(NNT_KAFKA_BOOTSTRAP="127.0.0.1:9"))
    monkeypatch.setattr(notify, "_producer", None)
    notify._live_producer()
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
