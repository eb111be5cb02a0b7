"""Compact, throttled updates for browsers on `nnt.live`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from schemas.common import Event, utcnow


class LivePoint(Event):
    """One logged epoch reduced to what a chart draws, with the trainer's send time."""

    epoch: int
    values: dict[str, float]
    at: datetime | None = None


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
    status: dict[str, Any] | None = None
    aggregates: list[dict[str, Any]] = Field(default_factory=list)
    row: dict[str, Any] | None = None
    diagnoses: list[dict[str, Any]] | None = Field(
        default=None, description="on `diagnosis`: the run's active diagnoses (schemas.diagnosis)"
    )
    health: dict[str, Any] | None = Field(
        default=None, description="on `diagnosis`: the run's health {verdict, flags}"
    )
    sent_at: datetime = Field(default_factory=utcnow)
