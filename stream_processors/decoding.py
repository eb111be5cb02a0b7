"""Decoding of incoming messages; an event without `at` takes its Kafka record's timestamp.

Why: `at` is part of every time-series primary key, and the event models default a missing
`at` to now(). A message sent without `at` and delivered twice (a consumer crash before the
offset commit, a producer retry) would then be stored twice under two different times. The
record's timestamp is the same on every delivery, so the row key is too.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

from pydantic import BaseModel

from schemas import epochs
from schemas.epochs import EpochEvent
from schemas.tensors import TensorHeader, unpack

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
# A parser: message bytes and the record's timestamp (seconds) -> the decoded event.
Parse = Callable[[bytes, float | None], T]


def record_time(timestamp: float | None) -> datetime | None:
    """A Kafka record timestamp (POSIX seconds, as Faust gives it) as UTC; None if unset."""
    if timestamp is None or timestamp <= 0:
        return None
    return datetime.fromtimestamp(timestamp, UTC)


def stamp(event: M, timestamp: float | None) -> M:
    """Give `event` the record's time when its sender left `at` out (pydantic knows: the
    field is missing from `model_fields_set`)."""
    if "at" not in event.model_fields_set:
        at = record_time(timestamp)
        if at is not None:
            event.at = at  # type: ignore[attr-defined]
    return event


def json_event(model: type[M]) -> Parse[M]:
    """A parser of one JSON event model; raises ValueError (pydantic) on bad content."""

    def parse(raw: bytes, timestamp: float | None) -> M:
        return stamp(model.model_validate_json(raw), timestamp)

    return parse


def epoch_event(raw: bytes, timestamp: float | None) -> EpochEvent:
    """One epoch event, binary (what trainers send) or JSON (schemas.epochs.decode)."""
    return stamp(epochs.decode(raw), timestamp)


def tensor_chunk(raw: bytes, timestamp: float | None) -> tuple[TensorHeader, bytes]:
    """One tensor chunk (schemas.tensors.unpack) with its header stamped."""
    header, payload = unpack(raw)
    return stamp(header, timestamp), payload
