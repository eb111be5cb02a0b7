"""Simulation pages: the live list and the simulation page with its tabs."""

from __future__ import annotations

import uuid
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from web.errors import NotFound
from web.simulations import access, listing, metrics, summary, tensors
from web.simulations.models import Simulation

PAGE_SIZE = 50
CHART_POINTS = 1000  # the first draw uses LTTB beyond this; the Raw control loads everything
TABLE_ROWS = 200
CREATE_PATH = "/experiments/new/"


def create_url() -> str | None:
    """The create-experiment form's address, once that page exists."""
    try:
        resolve(CREATE_PATH)
    except Resolver404:
        return None
    return CREATE_PATH


def _assets() -> dict[str, str]:
    try:
        ours = version("nntracker")
    except PackageNotFoundError:  # run from a source tree without `pip install -e .`
        ours = "dev"
    return {"plotly_version": version("plotly"), "asset_version": ours}


def _experiment_name(request: HttpRequest, query: listing.Query) -> str:
    if not query.experiment:
        return ""
    sim = (
        access.visible(request.user)
        .filter(experiment_id=query.experiment)
        .select_related("experiment")
        .first()
    )
    return (sim.experiment.name or str(sim.experiment_id)[:8]) if sim and sim.experiment else ""


@login_required
def simulation_list(request: HttpRequest) -> HttpResponse:
    """The user's simulations: search, status filter, sort, paging; rows update live."""
    query = listing.Query.from_params(request.GET)
    page = Paginator(listing.search(request.user, query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    keep = request.GET.copy()
    keep.pop("page", None)
    context = {
        "page": page,
        "simulations": page.object_list,
        "query": query,
        "filtered": query.filtered,
        "statuses": listing.VISIBLE_STATUSES,
        "sorts": listing.SORT_LABELS,
        "all_tags": listing.user_tags(request.user),
        "keep": keep.urlencode(),
        "create_url": create_url(),
        **_assets(),
        "experiment_name": _experiment_name(request, query),
        # New runs are inserted live where they belong: at the top of the newest-first page.
        "live_insert": page.number == 1 and query.sort == "-created",
    }
    return render(request, "simulations/list.html", context)


def _facts(sim: Simulation) -> list[tuple[str, Any]]:
    plan, exp = sim.config or {}, (sim.experiment.config if sim.experiment else {}) or {}
    rows: list[tuple[str, Any]] = [
        ("Optimizer", (plan.get("optimizer") or {}).get("optimizer")),
        ("Loss", (plan.get("loss") or {}).get("loss_function")),
        ("Learning rate", plan.get("learning_rate")),
        ("Fold", f"{plan['fold']} / {plan.get('folds')}" if plan.get("fold") else None),
        ("Total epochs", sim.total_epochs or exp.get("total_epochs")),
        ("Epoch period", exp.get("epoch_period")),
        ("Batch size", exp.get("batch_size")),
        ("Extra metrics", ", ".join(m.get("metric", "") for m in exp.get("extra_metrics") or [])),
        ("Experiment", exp.get("name")),
        ("Owner", sim.owner_name),
    ]
    return [(k, v) for k, v in rows if v not in (None, "", [])]


def _others(request: HttpRequest, sim: Simulation) -> list[dict[str, str]]:
    qs = listing.search(request.user, listing.Query()).exclude(pk=sim.pk)
    return [{"id": str(s.id), "name": s.name or str(s.id), "status": s.status} for s in qs[:300]]


@login_required
def simulation_detail(request: HttpRequest, simulation_id: uuid.UUID) -> HttpResponse:
    """One simulation: General, Graphs, Comparisons and Download tabs, all live."""
    try:
        sim = access.get_visible(request.user, simulation_id)
    except NotFound:
        raise Http404("no such simulation") from None
    series = metrics.read(sim.id)
    main, extra = metrics.ordered_names(series)
    rows = metrics.table(series, main + ["learning_rate"] + extra)
    chart = {name: metrics.downsample(s, CHART_POINTS) for name, s in series.items()}
    initial = {
        "simulation_id": str(sim.id),
        "status": sim.status,
        "epoch": sim.epoch,
        "total_epochs": sim.total_epochs,
        "metrics": chart,
        "raw_points": sum(len(s["epochs"]) for s in series.values()),
        "main": main,
        "extra": extra,
        "tags": sim.tags,
        "others": _others(request, sim),
    }
    model = sim.experiment.model_json if sim.experiment else {}
    context = {
        "sim": sim,
        "initial": initial,
        "facts": _facts(sim),
        "model": summary.model_summary(model or {}, tensors.parameter_counts(sim.id)),
        "model_json": model,
        "test_metrics": summary.test_metrics(sim.status, sim.message),
        "main_cols": main + (["learning_rate"] if "learning_rate" in series else []),
        "extra_cols": extra,
        "rows": rows[-TABLE_ROWS:],
        "rows_total": len(rows),
        "all_tags": listing.user_tags(request.user),
        **_assets(),
        "configured_extra": [
            m.get("metric", "")
            for m in ((sim.experiment.config if sim.experiment else {}) or {}).get("extra_metrics")
            or []
        ],
    }
    return render(request, "simulations/detail.html", context)
