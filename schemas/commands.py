"""Lifecycle commands on `nnt.commands`: plain JSON any Kafka client can produce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from schemas.common import Event, utcnow

LIFECYCLE = ("start", "pause", "resume", "stop", "delete")


class CommandBase(Event):
    """Fields every command carries; `command_id` makes delivery idempotent."""

    command_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    issued_by: str = Field(default="", max_length=150)
    issued_at: datetime = Field(default_factory=utcnow)


class CreateCommand(CommandBase):
    """Create every simulation of one experiment (key: experiment id)."""

    type: Literal["create"] = "create"
    experiment_id: uuid.UUID
    experiment: dict[str, Any] = Field(
        description="Appendix-A configuration with dataset URLs or stored-file references, "
        "plus `model` (the Keras model JSON)."
    )


class LifecycleCommand(CommandBase):
    """start, pause, resume, stop or delete one simulation (key: simulation id)."""

    type: Literal["start", "pause", "resume", "stop", "delete"]
    simulation_id: uuid.UUID


Command = Annotated[CreateCommand | LifecycleCommand, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[CreateCommand | LifecycleCommand] = TypeAdapter(Command)


def command_key(command: CreateCommand | LifecycleCommand) -> bytes:
    """Kafka key of a command: experiment id for create, simulation id otherwise."""
    ident = command.experiment_id if isinstance(command, CreateCommand) else command.simulation_id
    return str(ident).encode()
