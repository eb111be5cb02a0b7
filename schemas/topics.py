"""Kafka topic names and their partition counts: the one place these names are spelled."""

from __future__ import annotations

COMMANDS = "nnt.commands"
STATUS = "nnt.status"
EPOCHS = "nnt.epochs"
TENSORS = "nnt.tensors"
RESOURCES = "nnt.resources"
LIVE = "nnt.live"
DEAD_LETTER = "nnt.deadletter"

# Keyed topics: every event is keyed by simulation id, so partitions keep one run in order.
PARTITIONS: dict[str, int] = {
    COMMANDS: 6,
    STATUS: 6,
    EPOCHS: 6,
    TENSORS: 6,
    RESOURCES: 3,
    LIVE: 3,
    DEAD_LETTER: 3,
}

ALL_TOPICS: tuple[str, ...] = tuple(PARTITIONS)

# Broker and producer message cap. Tensor payloads are chunked well below it.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
TENSOR_CHUNK_BYTES = 1024 * 1024
