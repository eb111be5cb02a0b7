"""Lifecycle commands on `nnt.commands`: plain JSON any Kafka client can produce."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter

from schemas import auth, topics
from schemas.common import Event, utcnow

LIFECYCLE = ("start", "pause", "resume", "stop", "delete")


class CommandBase(Event):
    """Fields every command carries; `command_id` makes delivery idempotent.

    Who sent it is `principal` ("user:<id>" or "service:<name>"), proven by `signature`
    (schemas/auth.py: HMAC-SHA256 with that principal's key of generation `key_id`, over
    `signing_text()`); `issued_by` is only a display name.
    """

    command_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    issued_by: str = Field(default="", max_length=150)
    issued_at: datetime = Field(default_factory=utcnow)
    principal: str = Field(default="", max_length=80, description='"user:<id>" or "service:<name>"')
    key_id: int = Field(default=0, ge=0, description="generation of the principal's key")
    signature: str = Field(default="", max_length=128, description="hex HMAC-SHA256")

    def target(self) -> uuid.UUID:
        """What the command acts on (the Kafka key): a simulation or an experiment."""
        raise NotImplementedError

    def signing_text(self) -> bytes:
        """The bytes the signature covers (schemas.auth.signing_text)."""
        digest = auth.payload_digest(getattr(self, "experiment", None))
        kind = str(getattr(self, "type", ""))
        return auth.signing_text(
            kind, self.command_id, self.target(), self.principal, self.key_id, self.issued_at,
            digest,
        )  # fmt: skip

    def signed(self, principal: str, key: str, key_id: int = 0) -> Any:
        """A copy signed by `principal` with `key` (of generation `key_id`)."""
        out = self.model_copy(update={"principal": principal, "key_id": key_id})
        return out.model_copy(update={"signature": auth.mac(key, out.signing_text())})


class ExperimentCommand(CommandBase):
    """A command about a whole experiment (key: experiment id)."""

    experiment_id: uuid.UUID
    experiment: dict[str, Any] = Field(
        description="Appendix-A configuration with dataset URLs or stored-file references, "
        "plus `model` (the Keras model JSON)."
    )

    def target(self) -> uuid.UUID:
        """The experiment."""
        return self.experiment_id


class CreateCommand(ExperimentCommand):
    """Create every simulation of one experiment (key: experiment id)."""

    type: Literal["create"] = "create"


class CheckCommand(ExperimentCommand):
    """Pre-flight an experiment without creating anything (key: experiment id).

    The orchestrator builds the model and passes one real batch of the data through it, the
    loss and every metric, for each optimizer/loss combination, and answers `accepted`
    (with `notes`) or `rejected` (with per-field `errors`) naming this `command_id`.
    """

    type: Literal["check"] = "check"


class LifecycleCommand(CommandBase):
    """start, pause, resume, stop or delete one simulation (key: simulation id)."""

    type: Literal["start", "pause", "resume", "stop", "delete"]
    simulation_id: uuid.UUID

    def target(self) -> uuid.UUID:
        """The simulation."""
        return self.simulation_id


AnyCommand = CreateCommand | CheckCommand | LifecycleCommand
Command = Annotated[AnyCommand, Field(discriminator="type")]
COMMAND_ADAPTER: TypeAdapter[AnyCommand] = TypeAdapter(Command)


def command_key(command: AnyCommand) -> bytes:
    """Kafka key of a command: experiment id for create and check, simulation id otherwise."""
    ident = (
        command.experiment_id if isinstance(command, ExperimentCommand) else command.simulation_id
    )
    return topics.key_of(ident)
