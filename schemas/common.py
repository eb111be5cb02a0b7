"""Base model and small shared types for every event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError


def variable_error(exc: ValidationError) -> tuple[str, str]:
    """The environment variable a settings class refused first, and why: every component's
    `load()` turns it into its own error naming the variable."""
    err = exc.errors()[0]
    name = str(err["loc"][0]).upper() if err.get("loc") else "environment"
    return name, str(err.get("msg")).removeprefix("Value error, ")


def utcnow() -> datetime:
    """Return an aware UTC timestamp (every event time is UTC)."""
    return datetime.now(UTC)


class Event(BaseModel):
    """Base of every event: strict about unknown fields so typos surface as errors."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


Epoch = Annotated[int, Field(ge=0, description="1-based epoch number; 0 before the first epoch")]


B = TypeVar("B", bound=BaseModel)


def built(model: type[B], fields: dict[str, object]) -> B:
    """An instance of `model` from already valid values of every one of its fields, as
    pydantic's model_construct builds it, at a fraction of its cost (the ingest hot path:
    epoch events, live points). tests/unit/schemas/test_epoch_codec.py compares the two, so
    a pydantic upgrade that changes a model's inner attributes fails there."""
    if model not in _PRIVATE:
        attrs = model.__private_attributes__
        _PRIVATE[model] = {name: attr.get_default() for name, attr in attrs.items()} or None
    private = _PRIVATE[model]
    obj = object.__new__(model)
    object.__setattr__(obj, "__dict__", fields)
    object.__setattr__(obj, "__pydantic_fields_set__", set(fields))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None if private is None else dict(private))
    return obj


# Each model's private attributes with their defaults (immutable ones: None, numbers), once.
_PRIVATE: dict[type[BaseModel], dict[str, object] | None] = {}
