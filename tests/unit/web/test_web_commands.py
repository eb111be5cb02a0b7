"""What the web publishes on nnt.commands, seen through an injected publisher."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from schemas import topics
from schemas.codecs import load_command
from schemas.commands import CreateCommand, LifecycleCommand
from schemas.experiment import ExperimentConfig
from web.simulations import commands


class FakePublisher:
    """Keeps every message instead of sending it."""

    def __init__(self) -> None:
        self.messages: list[tuple[str, bytes, bytes]] = []

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.messages.append((topic, key, value))


@pytest.fixture()
def fake() -> Iterator[FakePublisher]:
    publisher = FakePublisher()
    commands.set_publisher(publisher)
    yield publisher
    commands.set_publisher(None)


def test_it_publishes_lifecycle_commands_keyed_by_simulation(fake: FakePublisher) -> None:
    sim = uuid.uuid4()
    commands.publish(LifecycleCommand(type="pause", simulation_id=sim, issued_by="ada"))
    [(topic, key, value)] = fake.messages
    assert topic == topics.COMMANDS == "nnt.commands"
    assert key == str(sim).encode()
    command = load_command(value)
    assert isinstance(command, LifecycleCommand)
    assert (command.type, command.simulation_id, command.issued_by) == ("pause", sim, "ada")


def test_it_publishes_create_with_the_model_keyed_by_experiment(fake: FakePublisher) -> None:
    experiment = uuid.uuid4()
    config = ExperimentConfig(
        name="mnist", dataset_train="stored:abc.npz", learning_rates=[0.1, 0.01]
    )
    model = {"class_name": "Sequential", "config": {"layers": []}}
    commands.publish(commands.create_command(experiment, config, model, "ada"))
    [(_, key, value)] = fake.messages
    command = load_command(value)
    assert key == str(experiment).encode()
    assert isinstance(command, CreateCommand)
    assert command.experiment["model"] == model
    assert command.experiment["dataset_train"] == "stored:abc.npz"
    assert command.experiment["learning_rates"] == [0.1, 0.01]
    assert (
        ExperimentConfig.model_validate(
            {k: v for k, v in command.experiment.items() if k != "model"}
        )
        == config
    )
