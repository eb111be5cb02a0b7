"""Simulation pages: the runs table, the overlay of several runs, and the simulation page."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Count
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import Resolver404, resolve

from store import diagnoses as diagnosis_store
from web import assets
from web.accounts import alerts
from web.errors import Invalid, NotFound
from web.simulations import access, experiments, listing, metrics, runs, summary, table, tensors
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


def _refused(request: HttpRequest, query: listing.Query) -> str:
    """What the page left out of the address: an unknown sort, filters that do not parse."""
    problems = []
    sort = request.GET.get("sort") or "-created"
    if sort != query.sort:
        problems.append(f"unknown sort {sort[:80]!r}: sorted newest first instead")
    for text in request.GET.getlist("filter"):
        if text not in query.filters:
            try:
                runs.narrow(Simulation.objects.none(), [text])
            except Invalid as exc:
                problems.append(f"filter left out — {exc.errors.get('filter', exc.message)}")
    return "; ".join(problems)


def _varying(qs: Any) -> set[str]:
    """The hyperparameters with more than one value among these runs."""
    distinct = {k: Count(runs.column(f"hp.{k}").expr, distinct=True) for k in runs.HPARAMS}
    try:
        counts = qs.order_by().aggregate(**distinct)
    except EmptyResultSet:
        return set()
    return {k for k, n in counts.items() if n and n > 1}


def _table_columns(request: HttpRequest, query: listing.Query) -> list[table.Column]:
    """The table's columns: those of every run the filters above the table match, whatever
    the column filters, with their sort links and default visibility."""
    unfiltered = listing.Query(
        q=query.q, status=query.status, tag=query.tag, experiment=query.experiment
    )
    every = listing.search(request.user, unfiltered)
    cols = table.columns(runs.columns(every), _varying(every), bool(request.user.is_staff))
    table.link_headers(cols, request.GET, query.sort)
    table.show_chosen(cols, query)
    return cols


@login_required
def simulation_list(request: HttpRequest) -> HttpResponse:
    """The runs table: hyperparameters, metrics, health; sorted, filtered and paged on the
    server, columns chosen in the browser; rows update live."""
    query = listing.Query.from_params(request.GET)
    page = Paginator(listing.search(request.user, query), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    items = runs.items(list(page.object_list))
    cols = _table_columns(request, query)
    chips = table.filter_chips(query.filters, request.GET, cols)
    context = {
        "page": page,
        "rows": table.rows(items, cols),
        "empty_row": table.rows([table.BLANK], cols)[0],
        "columns": cols,
        "column_groups": table.groups(cols),
        "chips": chips,
        "error": _refused(request, query),
        "query": query,
        "filtered": query.filtered,
        "statuses": listing.VISIBLE_STATUSES,
        "all_tags": listing.user_tags(request.user),
        "prev_href": "?" + table.with_params(request.GET, page=str(page.number - 1)),
        "next_href": "?" + table.with_params(request.GET, page=str(page.number + 1)),
        "shown_from": f"{page.start_index():,}",
        "shown_to": f"{page.end_index():,}",
        "total": f"{page.paginator.count:,}",
        "api_query": table.api_query(query),
        "create_url": create_url(),
        **assets.versions(),
        "experiment_name": _experiment_name(request, query),
        "early_stop_line": experiments.savings_line(request.user, query.experiment),
        # New runs are inserted live where they belong: at the top of the newest-first page.
        "live_insert": page.number == 1 and query.sort == "-created" and not query.filters,
    }
    return render(request, "simulations/list.html", context)


MAX_OVERLAY = 50


def _overlay_ids(text: str) -> tuple[list[uuid.UUID], int]:
    """The distinct run ids of `?ids=a,b,c` in their order, and how many parts were no id."""
    ids: list[uuid.UUID] = []
    bad = 0
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            ids.append(uuid.UUID(part))
        except ValueError:
            bad += 1
    return list(dict.fromkeys(ids)), bad


@login_required
def simulation_overlay(request: HttpRequest) -> HttpResponse:
    """Every metric of several runs on shared charts, one line per run, live; at most
    MAX_OVERLAY runs, and only those the user may see."""
    ids, bad = _overlay_ids(request.GET.get("ids") or "")
    wanted = ids[:MAX_OVERLAY]
    visible = access.visible(request.user).exclude(status="deleted").filter(id__in=wanted)
    found = {sim.id: sim for sim in visible}
    shown = [found[i] for i in wanted if i in found]
    initial = [
        {"id": str(s.id), "name": s.name or str(s.id), "status": s.status, "epoch": s.epoch,
         "total_epochs": s.total_epochs}
        for s in shown
    ]  # fmt: skip
    context = {
        "runs": shown,
        "initial": initial,
        "cut": max(0, len(ids) - MAX_OVERLAY),
        "max_runs": MAX_OVERLAY,
        "missing": len(wanted) - len(shown) + bad,
        **assets.versions(),
    }
    return render(request, "simulations/overlay.html", context)


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


def _active_diagnoses(sim: Simulation) -> list[dict[str, Any]]:
    """The run's active diagnoses for the banner's first render, fatal first."""
    with connection.cursor() as cursor:
        every = diagnosis_store.read_all(cursor, sim.id)
    return [d for d in every if d["active"]]


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
    diagnoses = _active_diagnoses(sim)
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
        "diagnoses": diagnoses,
    }
    model = sim.experiment.model_json if sim.experiment else {}
    context = {
        "sim": sim,
        "initial": initial,
        "facts": _facts(sim),
        "model": summary.model_summary(model or {}, tensors.parameter_counts(sim.id)),
        "model_json": model,
        "test_metrics": summary.run_test_metrics(sim),
        "main_cols": main + (["learning_rate"] if "learning_rate" in series else []),
        "extra_cols": extra,
        "rows": rows[-TABLE_ROWS:],
        "rows_total": len(rows),
        "all_tags": listing.user_tags(request.user),
        "diagnoses": diagnoses,
        "alert_level": alerts.preference(request.user),
        **assets.versions(),
        "configured_extra": [
            m.get("metric", "")
            for m in ((sim.experiment.config if sim.experiment else {}) or {}).get("extra_metrics")
            or []
        ],
    }
    return render(request, "simulations/detail.html", context)
