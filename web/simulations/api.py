"""REST endpoints of experiments and simulations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from ninja import File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile

from schemas.commands import LifecycleCommand
from web.accounts.auth import API_AUTH
from web.simulations import access, commands, experiments, metrics
from web.simulations.models import Simulation

router = Router(tags=["simulations"], auth=API_AUTH)


class CreatedOut(Schema):
    """Ids of a new experiment's simulations."""

    experiment_id: uuid.UUID
    simulations: list[uuid.UUID]


class SimulationOut(Schema):
    """One simulation as the API shows it."""

    id: uuid.UUID
    experiment_id: uuid.UUID | None
    name: str
    owner: str
    status: str
    epoch: int
    total_epochs: int
    progress: float
    tags: list[str]
    message: str
    error: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class SimulationDetailOut(SimulationOut):
    """A simulation with its plan and configuration."""

    config: dict[str, Any]


class FilterIn(Schema):
    """List filters."""

    status: str | None = None
    tag: str | None = None


class CommandOut(Schema):
    """An accepted lifecycle command; the run's status changes when it is carried out."""

    command_id: uuid.UUID
    simulation_id: uuid.UUID
    type: str


def _out(sim: Simulation) -> dict[str, Any]:
    return {
        "id": sim.id, "experiment_id": sim.experiment_id, "name": sim.name,
        "owner": sim.owner_name, "status": sim.status, "epoch": sim.epoch,
        "total_epochs": sim.total_epochs, "progress": sim.progress, "tags": sim.tags,
        "message": sim.message, "error": sim.error, "created_at": sim.created_at,
        "updated_at": sim.updated_at, "started_at": sim.started_at,
        "finished_at": sim.finished_at, "config": sim.config,
    }


@router.post("/experiments", response={201: CreatedOut})
def create_experiment(
    request: HttpRequest,
    config: Form[str],
    model: File[UploadedFile],
    dataset_train: File[UploadedFile | None] = None,
    dataset_test: File[UploadedFile | None] = None,
    dataset_val: File[UploadedFile | None] = None,
) -> Status[CreatedOut]:
    """Upload a configuration, a Keras model and datasets; one simulation per grid cell."""
    raw = experiments.parse_config(config)
    model_doc = experiments.parse_model(model)
    files = {"dataset_train": dataset_train, "dataset_test": dataset_test,
             "dataset_val": dataset_val}
    experiments.check(raw, files)  # fail on the config before writing any file
    raw = experiments.attach_datasets(raw, files, settings.DATASETS_DIR)
    created = experiments.create(request.auth, raw, model_doc)
    return Status(201, CreatedOut(experiment_id=created.experiment_id, simulations=created.simulations))


@router.get("/simulations", response=list[SimulationOut])
def list_simulations(request: HttpRequest, filters: Query[FilterIn]) -> list[dict[str, Any]]:
    """The caller's simulations (staff: all), newest first; deleted ones only on request."""
    qs = access.visible(request.auth)
    qs = qs.filter(status=filters.status) if filters.status else qs.exclude(status="deleted")
    if filters.tag:
        qs = qs.filter(tags__contains=[filters.tag])
    return [_out(sim) for sim in qs[:1000]]


@router.get("/simulations/{simulation_id}", response=SimulationDetailOut)
def get_simulation(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """Status, progress, epoch, configuration and error of one simulation."""
    return _out(access.get_visible(request.auth, simulation_id))


@router.get("/simulations/{simulation_id}/metrics", response=dict[str, dict[str, list]])
def get_metrics(request: HttpRequest, simulation_id: uuid.UUID,
                max_points: int | None = None) -> dict[str, dict[str, list]]:
    """Logged epoch metrics as `{metric: {"epochs": [...], "values": [...]}}`."""
    sim = access.get_visible(request.auth, simulation_id)
    return metrics.read(sim.id, max_points if max_points and max_points > 0 else None)


def _lifecycle(request: HttpRequest, simulation_id: uuid.UUID, kind: str) -> Status[CommandOut]:
    sim = access.get_visible(request.auth, simulation_id)
    command = LifecycleCommand(type=kind, simulation_id=sim.id,
                               issued_by=request.auth.get_username())
    commands.publish(command)
    return Status(202, CommandOut(command_id=command.command_id, simulation_id=sim.id, type=kind))


@router.post("/simulations/{simulation_id}/pause", response={202: CommandOut})
def pause(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to pause a run."""
    return _lifecycle(request, simulation_id, "pause")


@router.post("/simulations/{simulation_id}/resume", response={202: CommandOut})
def resume(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to resume a paused or stopped run."""
    return _lifecycle(request, simulation_id, "resume")


@router.post("/simulations/{simulation_id}/stop", response={202: CommandOut})
def stop(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to stop a run."""
    return _lifecycle(request, simulation_id, "stop")


@router.delete("/simulations/{simulation_id}", response={202: CommandOut})
def delete(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to delete a run and its data."""
    return _lifecycle(request, simulation_id, "delete")
