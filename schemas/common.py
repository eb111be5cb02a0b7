"""Base model and small shared types for every event."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

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
