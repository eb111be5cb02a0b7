"""Kafka topic and consumer group names, partition counts and producer defaults: the one
place these names are spelled."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    from schemas.kafkaauth import KafkaSecurity

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

# Consumer groups. The stream workers' group is their Faust app id, which also prefixes every
# topic of their own (table changelogs, TAG_POINTS): the ACLs grant that prefix.
STREAM_GROUP = "nntracker-stream"
# NNT_ORCHESTRATOR_GROUP's default: every orchestrator group starts with it.
ORCHESTRATOR_GROUP = "nntracker-orchestrator"
# The web's pre-flight answers (web/simulations/preflight.py): partitions are assigned, the
# group is never joined; it names the reader for the ACLs.
WEB_PREFLIGHT_GROUP = "nnt.web.preflight"
# Internal to the stream workers, not part of the product contract: epoch points of tagged
# simulations, re-keyed by (owner, tag) so that every aggregate of a tag lives in one partition.
TAG_POINTS = f"{STREAM_GROUP}-tag-points"


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


def producer_config(
    bootstrap: str, security: KafkaSecurity, overrides: Mapping[str, object] | None = None
) -> dict[str, object]:
    """librdkafka settings of every producer of the product: idempotent (retries never
    reorder or duplicate a run's events), acks=all, the broker's message cap and the
    deployment's NNT_KAFKA_* credentials; `overrides` adds or replaces options (linger.ms)."""
    return {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "enable.idempotence": True,
        # A `create` carries the model JSON and librdkafka's default of 1 000 000 bytes refused
        # a 1 MB model; the broker and the topics take MAX_MESSAGE_BYTES + 64 KiB.
        "message.max.bytes": MAX_MESSAGE_BYTES,
        **security.confluent_config(),
        **(overrides or {}),
    }
