"""REST endpoints of diagnoses: a run's problems with their evidence, and the caller's alerts.

The stream workers keep the rows (store/diagnoses.py); this module only reads them, for runs
the caller may see (web/simulations/access.py). Alerts are personal: staff get their own.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time
from typing import Any, Literal

from django.db import connection
from django.http import HttpRequest
from django.utils.dateparse import parse_date, parse_datetime
from ninja import Field, Query, Router, Schema

from store import diagnoses as store
from web.accounts.auth import API_AUTH
from web.errors import Invalid
from web.simulations import access

router = Router(tags=["diagnoses"], auth=API_AUTH)
Problem = str  # schemas.diagnosis.Problem; kept open here so an older row still reads
Severity = Literal["fatal", "warning"]


class DiagnosisBriefOut(Schema):
    """An active diagnosis as the runs table's health shows it."""

    problem: Problem
    severity: Severity
    title: str
    summary: str
    first_epoch: int
    layers: list[str]


class DiagnosisOut(DiagnosisBriefOut):
    """One problem a run had (schemas.diagnosis.Diagnosis), and whether it still has it."""

    fix: str = Field(description="what to try, in plain words")
    last_epoch: int = Field(description="the latest logged epoch it was seen in")
    evidence: dict[str, float | str | None]
    active: bool = Field(description="the run's latest diagnosed epoch still has it")


class DiagnosesOut(Schema):
    """Every diagnosis of the run, and the evidence of its last logged epochs."""

    diagnoses: list[DiagnosisOut] = Field(description="fatal first, then by first_epoch")
    evidence: list[dict[str, Any]] = Field(
        description="schemas.diagnosis.Evidence per logged epoch, by epoch (the last "
        f"{store.MAX_EVIDENCE_EPOCHS}); fields without a value are left out"
    )


class AlertsIn(Schema):
    """Since when, and how many."""

    since: str | None = Field(
        None, description="ISO 8601 time: only diagnoses first reported after it (none: all)"
    )
    limit: int = Field(100, ge=1, le=1000)


class AlertOut(Schema):
    """A diagnosis of one of the caller's runs, when it was first reported."""

    simulation_id: uuid.UUID
    name: str
    problem: Problem
    severity: Severity
    title: str
    summary: str
    fix: str
    first_epoch: int
    at: datetime = Field(description="when it was first reported: pass it as `since` next")


def all_of(simulation_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every diagnosis a run ever had (the caller checked that it may see the run)."""
    with connection.cursor() as cur:
        return store.read_all(cur, simulation_id)


def _since(raw: str | None) -> datetime:
    """`since` as an aware time; Invalid naming it otherwise."""
    if raw is None or raw == "":
        return datetime(1970, 1, 1, tzinfo=UTC)
    try:
        when = parse_datetime(raw.strip())
        day = None if when else parse_date(raw.strip())
        if day is not None:
            when = datetime.combine(day, time(), tzinfo=UTC)
        if when is not None:
            return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(UTC)
    except (ValueError, OverflowError):
        pass
    raise Invalid(
        "invalid since",
        {"since": f"{raw[:40]!r} is not a time: use ISO 8601, e.g. 2025-06-01T12:00:00Z"},
    )


@router.get("/simulations/{simulation_id}/diagnoses", response=DiagnosesOut)
def get_diagnoses(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """What is wrong with the run (every problem it had, active or not) and the per-layer
    and loss-curve evidence the trainer read, epoch by epoch."""
    sim = access.get_visible(request.auth, simulation_id)
    with connection.cursor() as cur:
        return {
            "diagnoses": store.read_all(cur, sim.id),
            "evidence": store.read_evidence(cur, sim.id),
        }


@router.get("/alerts", response=list[AlertOut])
def get_alerts(request: HttpRequest, params: Query[AlertsIn]) -> list[dict[str, Any]]:
    """Diagnoses of your own runs first reported after `since`, newest first (staff too see
    only their own: alerts are personal)."""
    since = _since(params.since)
    with connection.cursor() as cur:
        return store.read_alerts(cur, request.auth.pk, since, params.limit)
