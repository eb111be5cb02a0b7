"""Compact, throttled updates for browsers on `nnt.live`.

The records inside an update (a run's status, a list row, a tag aggregate, a run's health)
go to the pages as they were given: `codecs.dumps` drops the nulls of events, but a record
keeps every field its producer set, null included, and leaves out the ones it did not set
(web/live/messages.py relays them to the browsers key for key; web/static/web/*.js reads them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, field_serializer, model_serializer

from schemas.common import Epoch, Event, utcnow
from schemas.diagnosis import Diagnosis
from schemas.status import Status

Verdict = Literal["healthy", "warning", "failing"]


class Record(Event):
    """A record inside a live update: serialised with the fields it was given, null included."""

    @model_serializer(mode="wrap")
    def _as_given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        given = self.model_fields_set
        return {
            name: out.get(name)
            for name in type(self).model_fields
            if name in given and (name in out or getattr(self, name) is None)
        }


class LivePoint(Event):
    """One logged epoch reduced to what a chart draws, with the trainer's send time."""

    epoch: int
    values: dict[str, float]
    at: datetime | None = None


class LiveStatus(Record):
    """A run's lifecycle status as its page and the lists show it (stream_processors/agents.py)."""

    status: Status
    epoch: Epoch = 0
    total_epochs: int = Field(default=0, ge=0)
    message: str = ""
    error: str | None = Field(
        default=None, description="on `failed` only: the full error behind the one-line message"
    )


class TagAggregate(Record):
    """One metric of one tag group at one epoch, over the group's runs
    (stream_processors/tags.py); the statistics are null while no run contributes."""

    metric: str
    epoch: Epoch
    count: int = Field(default=0, ge=0)
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    std: float | None = Field(default=None, description="population standard deviation")


class RunRow(Record):
    """A simulation's row in the lists (web/live/notify.py): the API's list fields."""

    id: uuid.UUID
    experiment_id: uuid.UUID | None = None
    name: str = ""
    owner: str = ""
    status: str = ""
    epoch: int = 0
    total_epochs: int = 0
    tags: list[str] = Field(default_factory=list)
    created_at: datetime | None = None

    @field_serializer("created_at")
    def _iso(self, value: datetime | None) -> str | None:
        """As Python spells it (`+00:00`), like the list pages have always received it."""
        return value.isoformat() if value is not None else None


class LiveHealth(Record):
    """A diagnosed run's health: its verdict and the tensor health flags of its latest epoch."""

    verdict: Verdict
    flags: list[str] = Field(default_factory=list)


class LiveUpdate(Event):
    """Only the new points of one simulation (or tag aggregate) since the last update.

    `owner`: on `status` and `row`, the simulation's owner; on `tag`, whose tag group it is
    (tag aggregates are per owner and tag; an update without owner reaches nobody).
    `diagnosis`: the set of a run's active diagnoses changed (sent by the stream workers).
    `row`: a simulation's list row changed in the web (tags, name, a new run); the web sends
    these so that every web process's list pages hear of them, not only its own.
    """

    kind: Literal["epochs", "status", "tag", "row", "diagnosis"]
    simulation_id: uuid.UUID | None = None
    tag: str | None = None
    owner: str | None = None
    points: list[LivePoint] = Field(default_factory=list)
    status: LiveStatus | None = None
    aggregates: list[TagAggregate] = Field(default_factory=list)
    row: RunRow | None = None
    diagnoses: list[Diagnosis] | None = Field(
        default=None, description="on `diagnosis`: the run's active diagnoses"
    )
    health: LiveHealth | None = Field(default=None, description="on `diagnosis`: the run's health")
    sent_at: datetime = Field(default_factory=utcnow)
