"""Kafka topic names and their partition counts: the one place these names are spelled."""

from __future__ import annotations

import uuid
from typing import overload

COMMANDS = "nnt.commands"
STATUS = "nnt.status"
EPOCHS = "nnt.epochs"
TENSORS = "nnt.tensors"
RESOURCES = "nnt.resources"
LIVE = "nnt.live"
DEAD_LETTER = "nnt.deadletter"
ACCOUNTS = "nnt.accounts"  # compacted: the latest record of each account (key: user id)

# Keyed topics: every event is keyed by simulation id, so partitions keep one run in order.
PARTITIONS: dict[str, int] = {
    COMMANDS: 6,
    STATUS: 6,
    EPOCHS: 6,
    TENSORS: 6,
    RESOURCES: 3,
    LIVE: 3,
    DEAD_LETTER: 3,
    ACCOUNTS: 1,
}

# Topic settings beyond the defaults: accounts keep their latest record for ever; commands are
# stamped by the broker, so a replayed command shows its age (orchestrator/guard.py).
TOPIC_CONFIG: dict[str, dict[str, str]] = {
    ACCOUNTS: {"cleanup.policy": "compact"},
    COMMANDS: {"message.timestamp.type": "LogAppendTime"},
}

ALL_TOPICS: tuple[str, ...] = tuple(PARTITIONS)

# Broker and producer message cap. Tensor payloads are chunked well below it.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TENSOR_CHUNK_BYTES = 1024 * 1024


@overload
def key_of(ident: uuid.UUID | str) -> bytes: ...
@overload
def key_of(ident: None) -> None: ...
@overload
def key_of(ident: uuid.UUID | str | None) -> bytes | None: ...
def key_of(ident: uuid.UUID | str | None) -> bytes | None:
    """Message key of a simulation (or experiment, or tag): its id as text, so any client (kcat)
    can read it; None sends the message keyless."""
    return None if ident is None else str(ident).encode()
