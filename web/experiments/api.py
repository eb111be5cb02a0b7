"""POST /api/experiments/preview: validate a configuration and count its simulations."""

from __future__ import annotations

import uuid
from typing import Any

from django.http import HttpRequest
from ninja import Body, Router, Schema
from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields, expand, grid_size
from web.accounts.auth import API_AUTH

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
