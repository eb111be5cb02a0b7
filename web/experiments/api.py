"""POST /api/experiments/preview (validate a configuration, count its simulations) and
GET /api/experiments/{id} (an experiment, its runs' statuses and the compute early stopping saved)."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from ninja import Body, Router, Schema
from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields, expand, grid_size
from web.accounts.auth import API_AUTH
from web.errors import NotFound
from web.simulations.experiments import savings, visible_experiment

router = Router(tags=["experiments"], auth=API_AUTH)
PLACEHOLDER = "stored:preview"
NAMES_SHOWN = 50


class PreviewOut(Schema):
    """Whether the configuration is valid, how many runs it makes, and their names."""

    valid: bool
    simulations: int | None
    names: list[str]
    errors: dict[str, str]


@router.post("/experiments/preview", response=PreviewOut)
def preview(request: HttpRequest, config: Body[dict[str, Any]]) -> dict[str, Any]:
    """Check an appendix-A configuration without creating anything (datasets may come later)."""
    raw = {"dataset_train": PLACEHOLDER} | config
    try:
        parsed = ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        return {"valid": False, "simulations": None, "names": [], "errors": error_fields(exc)}
    count = grid_size(parsed)
    # Name the first runs only for grids small enough to expand cheaply.
    names = [p.name for p in expand(uuid.uuid4(), parsed)[:NAMES_SHOWN]] if count <= 1000 else []
    return {"valid": True, "simulations": count, "names": names, "errors": {}}


class StoppedRunOut(Schema):
    """One run the early-stop rule ended: where, why, and its test metrics when scored."""

    simulation_id: uuid.UUID
    name: str
    epoch: int
    total_epochs: int
    saved_epochs: int
    problem: str
    title: str
    summary: str
    test_metrics: dict[str, float]


class SavingsOut(Schema):
    """What early stopping did for the experiment (schemas.experiment.EarlyStopSpec)."""

    enabled: bool
    patience: int | None
    on: list[str]
    runs: int
    saved_epochs: int
    total_epochs: int
    percent: float
    summary: str
    stopped: list[StoppedRunOut]


class ExperimentOut(Schema):
    """One experiment: its configuration, its runs by status, and early stopping's savings."""

    id: uuid.UUID
    name: str
    created_at: datetime
    config: dict[str, Any]
    simulations: int
    statuses: dict[str, int]
    early_stop: SavingsOut


@router.get("/experiments/{experiment_id}", response=ExperimentOut)
def get_experiment(request: HttpRequest, experiment_id: uuid.UUID) -> dict[str, Any]:
    """An experiment of the caller's (staff: anyone's); 404 for others', never revealing them."""
    experiment = visible_experiment(request.auth, experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id}")
    statuses = Counter(
        experiment.simulations.exclude(status="deleted").values_list("status", flat=True)
    )
    spec = (experiment.config or {}).get("early_stop") or {}
    saved = savings(experiment)
    return {
        "id": experiment.id,
        "name": experiment.name,
        "created_at": experiment.created_at,
        "config": experiment.config or {},
        "simulations": sum(statuses.values()),
        "statuses": dict(statuses),
        "early_stop": {
            "enabled": saved.enabled,
            "patience": spec.get("patience"),
            "on": list(spec.get("on") or []),
            "runs": saved.runs,
            "saved_epochs": saved.saved_epochs,
            "total_epochs": saved.total_epochs,
            "percent": saved.percent,
            "summary": saved.line,
            "stopped": saved.stopped,
        },
    }
