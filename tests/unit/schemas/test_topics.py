"""One message key for every producer: a simulation's (or experiment's) id as text."""

from __future__ import annotations

import uuid

from schemas import topics
from schemas.commands import CreateCommand, LifecycleCommand, command_key
from trainer import publisher

SIM = uuid.UUID("2f1c6e0a-8a4b-4c3e-9d2f-0b7a1e5c9d44")


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
