"""Encode and decode events on the wire: plain JSON except the binary tensor codec."""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel

from schemas.commands import COMMAND_ADAPTER, AnyCommand

M = TypeVar("M", bound=BaseModel)


def dumps(event: BaseModel) -> bytes:
    """JSON bytes of an event, nulls dropped to keep messages small."""
    return event.model_dump_json(exclude_none=True).encode()


def loads(model: type[M], data: bytes | str) -> M:
    """Parse and validate one JSON event; raises pydantic.ValidationError."""
    return model.model_validate_json(data)


def load_command(data: bytes | str) -> AnyCommand:
    """Parse any command by its `type`."""
    return COMMAND_ADAPTER.validate_json(data)
