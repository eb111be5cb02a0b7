"""REST endpoints of experiments and simulations: create, list, detail, lifecycle, tags, bulk."""

from __future__ import annotations

import unicodedata
import uuid
from datetime import datetime
from typing import Any, Literal

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from ninja import Field, File, Form, Query, Router, Schema, Status
from ninja.files import UploadedFile

from schemas import lifecycle
from schemas.commands import LifecycleCommand
from schemas.status import EarlyStop
from web.accounts import keys
from web.accounts.auth import API_AUTH
from web.errors import Conflict, Invalid
from web.live import notify
from web.simulations import access, commands, diagnoses_api, experiments, listing, runs, uploads
from web.simulations.data_api import router as data_router
from web.simulations.diagnoses_api import DiagnosisBriefOut, DiagnosisOut
from web.simulations.models import Simulation

router = Router(tags=["simulations"], auth=API_AUTH)
router.add_router("", data_router, auth=API_AUTH)
router.add_router("", "web.simulations.resources_api.router", auth=API_AUTH)
PAST = {"pause": "paused", "resume": "resumed", "stop": "stopped", "delete": "deleted"}
MAX_TAGS = 20


class CreatedOut(Schema):
    """Ids of a new experiment's simulations, and what the pre-flight adapted (label
    encoding, scaling, metrics given one-hot labels)."""

    experiment_id: uuid.UUID
    simulations: list[uuid.UUID]
    notes: list[str] = []


class HparamsOut(Schema):
    """A run's hyperparameters (null where its configuration does not say)."""

    optimizer: str | None
    loss: str | None
    learning_rate: float | None
    fold: int | None
    batch_size: int | None
    epochs: int | None


class MetricSummaryOut(Schema):
    """One epoch metric of a run: the value at its highest epoch, and its best value."""

    last: float | None = Field(description="the value at the highest epoch logged (`epoch`)")
    best: float | None = Field(description="the lowest value if `goal` is min, else the highest")
    best_epoch: int | None
    epoch: int | None
    goal: Literal["min", "max"]


class HealthOut(Schema):
    """The run's health verdict, its active diagnoses and the tensor health flags of its
    latest recorded epoch."""

    verdict: Literal["healthy", "warning", "failing", "unknown"] = Field(
        description="a run the trainer diagnoses: failing when it failed or has an active fatal "
        "diagnosis, warning with an active warning, else healthy; a run never diagnosed: "
        "failing when it failed or a metric or tensor was non-finite, warning with health "
        "flags on the latest tensors; unknown: nothing recorded yet"
    )
    flags: list[str]
    diagnoses: list[DiagnosisBriefOut] = Field(
        [], description="the active diagnoses, fatal first (GET /simulations/{id}/diagnoses)"
    )


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
    message: str = Field(
        description="The latest status message; on `failed`, the reason in one line"
    )
    error: str = Field(description="On `failed`: the full error (traceback) behind `message`")
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    hparams: HparamsOut
    metrics: dict[str, MetricSummaryOut]
    health: HealthOut
    duration_s: float | None = Field(description="finished_at (or now) minus started_at")
    early_stop: EarlyStop | None = Field(
        default=None,
        description="on a run the experiment's early-stop rule ended: the diagnosis that "
        "stopped it, the epoch, and the epochs it saved",
    )


class SimulationDetailOut(SimulationOut):
    """A simulation with its plan, configuration and final test metrics."""

    config: dict[str, Any]
    test_metrics: dict[str, float]
    diagnoses: list[DiagnosisOut] = Field(
        description="every problem the run ever had, with `active`; fatal first, then by "
        "first_epoch"
    )


class ColumnsIn(Schema):
    """Which runs: status, tag, free text (name or tag), experiment."""

    status: str | None = None
    tag: str | None = None
    q: str | None = Field(None, description="part of the name or of a tag")
    experiment: uuid.UUID | None = Field(None, description="only this experiment's simulations")


class ColumnsOut(Schema):
    """The hyperparameters and epoch metrics that at least one of the runs has."""

    hparams: list[str]
    metrics: list[str]


class ListIn(ColumnsIn):
    """List filters: status, tag, free text (name or tag), column filters, sort, paging."""

    sort: str = Field(
        "-created",
        description="a column key, - first for descending: name, status, created, progress, "
        "epoch, duration, health, hp.optimizer, hp.loss, hp.learning_rate, hp.fold, "
        "hp.batch_size, metric.<name>.last, metric.<name>.best; runs without a value last",
    )
    filter: list[str] = Field(
        [],
        description="repeatable <column key>:<op>:<value>, op one of eq ne lt le gt ge "
        "contains, e.g. hp.optimizer:eq:Adam or metric.val_accuracy.best:ge:0.9",
    )
    limit: int = Field(1000, ge=1, le=1000)
    # Bounded: PostgreSQL's OFFSET is a bigint, and a larger number was a 500 (found by the
    # schemathesis fuzz, tests/integration/web/test_web_fuzz.py).
    offset: int = Field(0, ge=0, le=listing.MAX_OFFSET)


class CommandOut(Schema):
    """An accepted lifecycle command; the run's status changes when it is carried out."""

    command_id: uuid.UUID
    simulation_id: uuid.UUID
    type: str


class TagIn(Schema):
    """One tag to add or remove."""

    tag: str = Field(min_length=1, max_length=64)


class TagsOut(Schema):
    """A simulation's tags after the change."""

    id: uuid.UUID
    tags: list[str]


class BulkIn(Schema):
    """One lifecycle action on several simulations."""

    ids: list[uuid.UUID] = Field(min_length=1, max_length=500)
    action: lifecycle.Action


class SkippedOut(Schema):
    """A simulation a bulk action left alone: its status does not take the action."""

    simulation_id: uuid.UUID
    status: str
    reason: str


class BulkOut(Schema):
    """One accepted command per simulation whose status takes the action; the rest skipped."""

    commands: list[CommandOut]
    skipped: list[SkippedOut] = []


@router.post("/experiments", response={201: CreatedOut})
def create_experiment(
    request: HttpRequest,
    config: Form[str],
    model: File[UploadedFile],
    dataset_train: File[UploadedFile | None] = None,
    dataset_test: File[UploadedFile | None] = None,
    dataset_val: File[UploadedFile | None] = None,
) -> Status[CreatedOut]:
    """Upload a configuration, a Keras model and datasets; one simulation per grid cell.

    A file over its limit (NNT_MAX_UPLOAD_BYTES, NNT_MAX_MODEL_BYTES, together
    NNT_MAX_EXPERIMENT_UPLOAD_BYTES) is 413 naming the field and the limit; so are datasets
    that would take you past your max_storage_bytes. Nothing is stored then."""
    uploads.check(request)  # first: nothing else matters about a refused file
    raw = experiments.parse_config(config)
    model_doc = experiments.parse_model(model)
    files = {
        "dataset_train": dataset_train,
        "dataset_test": dataset_test,
        "dataset_val": dataset_val,
    }
    experiments.check(raw, files)  # fail on the config before writing any file
    uploads.check_command(raw, model_doc, files, request.auth.get_username())
    uploads.check_storage(request.auth, files)
    raw = experiments.attach_datasets(raw, files, settings.DATASETS_DIR)
    created = experiments.create(request.auth, raw, model_doc)
    return Status(
        201,
        CreatedOut(
            experiment_id=created.experiment_id,
            simulations=created.simulations,
            notes=created.notes,
        ),
    )


@router.get("/simulations", response=list[SimulationOut])
def list_simulations(
    request: HttpRequest, response: HttpResponse, filters: Query[ListIn]
) -> list[dict[str, Any]]:
    """The caller's simulations (staff: all), filtered, searched and sorted; `X-Total-Count` header."""
    query = listing.Query(
        q=filters.q or "",
        status=filters.status or "",
        tag=filters.tag or "",
        sort=filters.sort,
        experiment=filters.experiment,
        filters=tuple(filters.filter),
    )
    qs = listing.search(request.auth, query)
    response["X-Total-Count"] = str(qs.count())
    return runs.items(list(qs[filters.offset : filters.offset + filters.limit]))


# Before /simulations/{simulation_id}: "columns" is no simulation id.
@router.get("/simulations/columns", response=ColumnsOut)
def list_columns(request: HttpRequest, filters: Query[ColumnsIn]) -> dict[str, list[str]]:
    """The hyperparameter and metric columns that exist among the caller's matching runs."""
    query = listing.Query(
        q=filters.q or "",
        status=filters.status or "",
        tag=filters.tag or "",
        experiment=filters.experiment,
    )
    return runs.columns(listing.search(request.auth, query))


@router.post("/simulations/bulk", response={202: BulkOut})
def bulk(request: HttpRequest, body: BulkIn) -> Status[BulkOut]:
    """One action on several of the caller's simulations; any unknown id → 404, nothing sent.

    Runs whose status does not take the action (schemas/lifecycle.py) are skipped and listed;
    when none takes it, 409 and nothing is sent."""
    sims = [access.get_visible(request.auth, sid) for sid in dict.fromkeys(body.ids)]
    able = [sim for sim in sims if lifecycle.allowed(body.action, sim.status)]
    skipped = [
        SkippedOut(
            simulation_id=sim.id,
            status=sim.status,
            reason=lifecycle.refusal(body.action, sim.status),
        )
        for sim in sims
        if sim not in able
    ]
    if not able:
        raise Conflict(
            f"none of these simulations can be {PAST[body.action]}: "
            + "; ".join(f"{s.simulation_id} is {s.status}" for s in skipped[:10])
        )
    sent = [_send(request, sim, body.action) for sim in able]
    return Status(202, BulkOut(commands=sent, skipped=skipped))


@router.get("/simulations/{simulation_id}", response=SimulationDetailOut)
def get_simulation(request: HttpRequest, simulation_id: uuid.UUID) -> dict[str, Any]:
    """Status, progress, epoch, configuration, test metrics and error of one simulation, with
    its hyperparameters, metric summaries, health, duration and diagnoses."""
    sim = access.get_visible(request.auth, simulation_id)
    return runs.items([sim])[0] | {"diagnoses": diagnoses_api.all_of(sim.id)}


def _send(request: HttpRequest, sim: Simulation, kind: str) -> CommandOut:
    command = keys.sign(LifecycleCommand(type=kind, simulation_id=sim.id), request.auth)
    commands.publish(command)
    return CommandOut(command_id=command.command_id, simulation_id=sim.id, type=kind)


def _lifecycle(request: HttpRequest, simulation_id: uuid.UUID, kind: str) -> Status[CommandOut]:
    """Send `kind` when the run's status takes it (schemas/lifecycle.py), else 409 saying why:
    the orchestrator would refuse it anyway, later and out of sight."""
    sim = access.get_visible(request.auth, simulation_id)
    if not lifecycle.allowed(kind, sim.status):
        raise Conflict(lifecycle.refusal(kind, sim.status))
    return Status(202, _send(request, sim, kind))


@router.post("/simulations/{simulation_id}/pause", response={202: CommandOut})
def pause(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to pause a running run (409 for any other status)."""
    return _lifecycle(request, simulation_id, "pause")


@router.post("/simulations/{simulation_id}/resume", response={202: CommandOut})
def resume(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to resume a paused, stopped or failed run (409 otherwise)."""
    return _lifecycle(request, simulation_id, "resume")


@router.post("/simulations/{simulation_id}/stop", response={202: CommandOut})
def stop(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to stop a queued, starting, running or paused run (409 otherwise)."""
    return _lifecycle(request, simulation_id, "stop")


@router.delete("/simulations/{simulation_id}", response={202: CommandOut})
def delete(request: HttpRequest, simulation_id: uuid.UUID) -> Status[CommandOut]:
    """Ask the orchestrator to delete a run and its data (409 when it is already deleted)."""
    return _lifecycle(request, simulation_id, "delete")


def clean_tag(raw: str) -> str:
    """A tag as stored: trimmed, inner whitespace collapsed; Invalid names the field."""
    tag = " ".join(raw.split())
    if not tag or len(tag) > 64:
        raise Invalid("invalid tag", {"tag": "a tag has 1 to 64 characters"})
    if any(unicodedata.category(c) == "Cc" for c in tag):
        raise Invalid(
            "invalid tag", {"tag": "remove the control characters (e.g. NUL) from the tag"}
        )
    return tag


@router.post("/simulations/{simulation_id}/tags", response=TagsOut)
def add_tag(request: HttpRequest, simulation_id: uuid.UUID, body: TagIn) -> dict[str, Any]:
    """Add one tag (no duplicates); answers with the simulation's tags."""
    sim = access.get_visible(request.auth, simulation_id)
    tag = clean_tag(body.tag)
    if tag not in sim.tags:
        if len(sim.tags) >= MAX_TAGS:
            raise Invalid("too many tags", {"tag": f"a simulation has at most {MAX_TAGS} tags"})
        sim.tags = [*sim.tags, tag]
        Simulation.objects.filter(pk=sim.pk).update(tags=sim.tags)
        notify.rows_changed([sim])
    return {"id": sim.id, "tags": sim.tags}


@router.delete("/simulations/{simulation_id}/tags", response=TagsOut)
def remove_tag(request: HttpRequest, simulation_id: uuid.UUID, body: TagIn) -> dict[str, Any]:
    """Remove one tag (absent tags are fine); answers with the simulation's tags."""
    sim = access.get_visible(request.auth, simulation_id)
    tag = clean_tag(body.tag)
    if tag in sim.tags:
        sim.tags = [t for t in sim.tags if t != tag]
        Simulation.objects.filter(pk=sim.pk).update(tags=sim.tags)
        notify.rows_changed([sim])
    return {"id": sim.id, "tags": sim.tags}
