"""The grid views page: parallel coordinates, scatter and heatmap of one experiment's or tag's runs.

The page is drawn in the browser (web/static/web/grid.js) from `GET /api/simulations`, which
carries each run's hyperparameters and metric summaries; this view only picks the scope (an
experiment or a tag), names it, and offers a chooser when none is given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Max
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from web import assets
from web.simulations import access, listing

CHOOSER_EXPERIMENTS = 30  # the most recent ones; older experiments are reached from the list
MAX_TAG_LENGTH = 64  # as web/simulations/api.py TagIn


@dataclass(frozen=True)
class Scope:
    """The runs a grid view shows: one experiment's or one tag's (never both, never neither)."""

    experiment: uuid.UUID | None = None
    tag: str = ""
    problem: str = ""  # why the parameters named no scope, said to the user

    @property
    def query(self) -> str:
        """The scope as URL parameters, for the API and the runs list."""
        if self.experiment:
            return urlencode({"experiment": str(self.experiment)})
        return urlencode({"tag": self.tag}) if self.tag else ""


def _scope(params: Any) -> Scope:
    raw_exp = (params.get("experiment") or "").strip()
    tag = (params.get("tag") or "").strip()
    if raw_exp:
        try:
            return Scope(experiment=uuid.UUID(raw_exp))
        except ValueError:
            return Scope(problem=f"“{raw_exp[:80]}” is not an experiment id: pick one below.")
    if tag and ("\x00" in tag or len(tag) > MAX_TAG_LENGTH):
        return Scope(problem="That tag cannot exist (tags are at most 64 characters): pick one.")
    return Scope(tag=tag)


def _experiments(user: Any) -> list[dict[str, Any]]:
    """The user's most recent experiments that have runs, with their run counts."""
    rows = (
        access.visible(user)
        .exclude(status="deleted")
        .exclude(experiment_id=None)
        .values("experiment_id", "experiment__name")
        .annotate(runs=Count("id"), latest=Max("created_at"))
        .order_by("-latest")[:CHOOSER_EXPERIMENTS]
    )
    return [
        {
            "query": urlencode({"experiment": str(r["experiment_id"])}),
            "name": r["experiment__name"] or str(r["experiment_id"])[:8],
            "runs": r["runs"],
        }
        for r in rows
    ]


def _title(user: Any, scope: Scope) -> str:
    if not scope.experiment:
        return f"tag “{scope.tag}”"
    sim = (
        access.visible(user)
        .filter(experiment_id=scope.experiment)
        .select_related("experiment")
        .first()
    )
    name = sim.experiment.name if sim and sim.experiment else ""
    return f"experiment “{name or str(scope.experiment)[:8]}”"


@login_required
def simulation_grid(request: HttpRequest) -> HttpResponse:
    """Grid views of an experiment's or a tag's runs; a chooser when neither is given."""
    scope = _scope(request.GET)
    context: dict[str, Any] = {"scope": scope, **assets.versions()}
    if not scope.query:
        context |= {
            "experiments": _experiments(request.user),
            "tags": listing.user_tags(request.user),
        }
        return render(request, "simulations/grid.html", context)
    runs = listing.search(
        request.user, listing.Query(tag=scope.tag, experiment=scope.experiment)
    ).count()
    context |= {
        "title": _title(request.user, scope),
        "runs": runs,
        "api_url": f"/api/simulations?{scope.query}",
        "list_url": f"/simulations/?{scope.query}",
    }
    return render(request, "simulations/grid.html", context)
