"""Simulation pages: the list and the live detail chart."""

from __future__ import annotations

import uuid
from importlib.metadata import version

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from web.errors import NotFound
from web.simulations import access, metrics
from web.simulations.models import STATUSES


@login_required
def simulation_list(request: HttpRequest) -> HttpResponse:
    """The user's simulations with status and progress, filterable by tag and status."""
    qs = access.visible(request.user).exclude(status="deleted").select_related("experiment")
    tag = request.GET.get("tag") or ""
    status = request.GET.get("status") or ""
    if tag:
        qs = qs.filter(tags__contains=[tag])
    if status:
        qs = qs.filter(status=status)
    context = {"simulations": qs[:500], "tag": tag, "status": status,
               "filtered": bool(tag or status), "statuses": STATUSES[:-1]}
    return render(request, "simulations/list.html", context)


@login_required
def simulation_detail(request: HttpRequest, simulation_id: uuid.UUID) -> HttpResponse:
    """One simulation: status badge, progress and the live metrics chart."""
    try:
        sim = access.get_visible(request.user, simulation_id)
    except NotFound:
        raise Http404("no such simulation") from None
    initial = {"simulation_id": str(sim.id), "status": sim.status, "epoch": sim.epoch,
               "total_epochs": sim.total_epochs, "metrics": metrics.read(sim.id)}
    context = {"sim": sim, "initial": initial, "plotly_version": version("plotly")}
    return render(request, "simulations/detail.html", context)
