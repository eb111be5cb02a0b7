"""Creating an experiment: validate the upload, store datasets, insert rows, send `create`."""

from __future__ import annotations

import json
import logging
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from django.db import transaction
from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields, expand
from web.accounts import keys
from web.errors import Invalid
from web.live import notify
from web.simulations import commands, preflight, storage, summary
from web.simulations.models import Experiment, Simulation

log = logging.getLogger(__name__)
DATASET_FIELDS = ("dataset_train", "dataset_test", "dataset_val")
NUL_FIX = "remove the NUL character (\\u0000): text cannot hold one"
STORED = re.compile(r"^stored:[0-9a-f]{64}\.[a-z0-9]{1,8}$")
DATASET_FIX = (
    "give an http:// or https:// URL, or upload the file; file://, other schemes and "
    "local paths are not allowed"
)


class Upload(Protocol):
    """What the web needs of an uploaded file (Django's UploadedFile fits)."""

    name: str | None

    def chunks(self) -> Any:
        """Iterate over the bytes."""


@dataclass
class Created:
    """Ids of a new experiment and its simulations, in plan order."""

    experiment_id: uuid.UUID
    simulations: list[uuid.UUID]
    notes: list[str]


def parse_config(text: str | bytes) -> dict[str, Any]:
    """The `config` field as a JSON object, or Invalid naming it."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise Invalid("config is nested too deeply", {"config": "nested too deeply"}) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid("config is not valid JSON", {"config": f"not valid JSON: {exc}"}) from None
    if not isinstance(data, dict):
        raise Invalid("config must be a JSON object", {"config": "must be a JSON object"})
    where = nul_path(data)
    if where is not None:
        raise Invalid("config contains a NUL character", {where or "config": NUL_FIX})
    return data


def parse_model(upload: Upload | None) -> dict[str, Any]:
    """The Keras model JSON file as a dict, or Invalid naming `model`."""
    if upload is None:
        raise Invalid("the model file is missing", {"model": "upload the Keras model JSON file"})
    try:
        data = json.loads(b"".join(upload.chunks()))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise Invalid("model is not JSON", {"model": "not a Keras model JSON file"}) from None
    if not isinstance(data, dict):
        raise Invalid("model must be a JSON object", {"model": "must be a JSON object"})
    where = nul_path(data)
    if where is not None:
        raise Invalid("model contains a NUL character", {"model": f"{NUL_FIX} (at {where or '/'})"})
    return data


def nul_path(data: Any, path: str = "") -> str | None:
    """Dotted path of the first key or string holding a NUL (PostgreSQL cannot store it)."""
    if isinstance(data, str):
        return path if "\x00" in data else None
    items: Any = ()
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = ((str(i), v) for i, v in enumerate(data))
    for key, value in items:
        here = f"{path}.{key}" if path else str(key)
        if "\x00" in key:
            return here
        found = nul_path(value, here)
        if found is not None:
            return found
    return None


def validate(raw: dict[str, Any]) -> ExperimentConfig:
    """Appendix-A validation, errors per field."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise Invalid("invalid experiment configuration", error_fields(exc)) from None


def check_dataset_refs(raw: dict[str, Any], files: dict[str, Upload | None]) -> None:
    """A dataset given as text must be an http(s) URL or a stored-file reference: file://,
    other schemes and paths are refused here, at submission, not later by the orchestrator."""
    errors: dict[str, str] = {}
    for field in DATASET_FIELDS:
        value = raw.get(field)
        if files.get(field) is not None or not isinstance(value, str) or STORED.match(value):
            continue  # an upload replaces the text; a wrong type is the schema's to name
        try:
            parts = urlsplit(value.strip())
            usable = parts.scheme.lower() in ("http", "https") and bool(parts.hostname)
        except ValueError:
            usable = False
        if not usable:
            errors[field] = DATASET_FIX
    if errors:
        raise Invalid("datasets must be uploads or http(s) URLs", errors)


def check(raw: dict[str, Any], files: dict[str, Upload | None]) -> None:
    """Validate before any file is written: an uploaded dataset stands in for its field."""
    placeholders = {f: "stored:pending" for f, upload in files.items() if upload is not None}
    for field, upload in files.items():
        if upload is not None:
            storage.extension(upload.name or "", field)
    errors: dict[str, str] = {}  # every problem at once
    try:
        check_dataset_refs(raw, files)
    except Invalid as exc:
        errors |= exc.errors
    try:
        validate(raw | placeholders)
    except Invalid as exc:
        errors = exc.errors | errors
    if errors:
        raise Invalid("invalid experiment configuration", errors)


def attach_datasets(
    raw: dict[str, Any], files: dict[str, Upload | None], root: Path
) -> dict[str, Any]:
    """Store uploaded datasets and point the config at them (uploads win over URLs)."""
    out = dict(raw)
    for field in DATASET_FIELDS:
        upload = files.get(field)
        if upload is not None:
            ext = storage.extension(upload.name or "", field)
            out[field] = storage.store(upload.chunks(), ext, root)
            storage.share(out[field], root)
    return out


def create(owner: Any, raw: dict[str, Any], model: dict[str, Any]) -> Created:
    """Pre-flight, then insert the experiment and its simulations and send `create`, all or
    nothing; a pre-flight failure is Invalid (422) and leaves no trace."""
    config = validate(raw)
    experiment_id = uuid.uuid4()
    plans = expand(experiment_id, config)
    username = owner.get_username()
    command = keys.sign(commands.create_command(experiment_id, config, model, username), owner)
    notes = preflight.preflight(keys.sign(commands.check_command(command), owner))
    with transaction.atomic():
        experiment = Experiment.objects.create(
            id=experiment_id,
            owner=owner,
            name=config.name,
            config=config.model_dump(mode="json"),
            model_json=model,
        )
        Simulation.objects.bulk_create(
            [
                Simulation(
                    id=plan.simulation_id,
                    experiment=experiment,
                    owner=owner,
                    owner_name=username,
                    name=plan.name,
                    tags=plan.tags,
                    index=plan.index,
                    total_epochs=config.total_epochs,
                    status="queued",
                    config=plan.model_dump(mode="json"),
                )
                for plan in plans
            ]
        )
        # Publish inside the transaction: if Kafka fails, the rows roll back.
        commands.publish(command)
        transaction.on_commit(lambda: _announce(experiment_id))
    log.info("experiment %s created with %d simulations", experiment_id, len(plans))
    return Created(experiment_id, [p.simulation_id for p in plans], notes)


def _announce(experiment_id: uuid.UUID) -> None:
    """Show the new rows on open list pages at once (the orchestrator's statuses follow)."""
    notify.rows_changed(list(Simulation.objects.filter(experiment_id=experiment_id)))


@dataclass
class Savings:
    """What the experiment's early-stop rule saved: runs it ended and epochs they skipped."""

    enabled: bool
    runs: int
    saved_epochs: int
    total_epochs: int  # the epochs the experiment's runs were set to train, all together
    stopped: list[dict[str, Any]]

    @property
    def percent(self) -> float:
        """The saved share of the planned epochs, in percent."""
        return round(100 * self.saved_epochs / self.total_epochs, 1) if self.total_epochs else 0.0

    @property
    def line(self) -> str:
        """One line for the experiment page, the API and the CLI; "" when the rule is off."""
        if not self.enabled and not self.runs:
            return ""
        if not self.runs:
            return "Early stopping is on: no run stopped early so far"
        return (
            f"Early stopping ended {self.runs} run{'s' if self.runs != 1 else ''}, saving "
            f"{self.saved_epochs} of {self.total_epochs} epochs ({self.percent:g} %)"
        )


def savings(experiment: Experiment) -> Savings:
    """Count the compute the early-stop rule saved, from the runs' kept stop reasons (the
    status projection's `early_stop`), not from their messages."""
    sims = list(
        experiment.simulations.exclude(status="deleted")
        .order_by("index")
        .values("id", "name", "status", "epoch", "total_epochs", "early_stop", "test_metrics")
    )
    stopped = [s for s in sims if s["status"] == "stopped" and s["early_stop"]]
    enabled = bool(((experiment.config or {}).get("early_stop") or {}).get("enabled"))
    return Savings(
        enabled=enabled,
        runs=len(stopped),
        saved_epochs=sum(_saved(s) for s in stopped),
        total_epochs=sum(max(0, s["total_epochs"] or 0) for s in sims),
        stopped=[_stop_item(s) for s in stopped],
    )


def _saved(sim: dict[str, Any]) -> int:
    note = sim["early_stop"]
    saved = note.get("saved_epochs") if isinstance(note, dict) else None
    return int(saved) if isinstance(saved, int) else max(0, sim["total_epochs"] - sim["epoch"])


def _stop_item(sim: dict[str, Any]) -> dict[str, Any]:
    note = sim["early_stop"] if isinstance(sim["early_stop"], dict) else {}
    return {
        "simulation_id": sim["id"],
        "name": sim["name"],
        "epoch": sim["epoch"],
        "total_epochs": sim["total_epochs"],
        "saved_epochs": _saved(sim),
        "problem": str(note.get("problem") or ""),
        "title": str(note.get("title") or ""),
        "summary": str(note.get("summary") or ""),
        "test_metrics": summary.final_test_metrics(
            sim["status"], sim["test_metrics"], "", sim["early_stop"]
        ),
    }


def visible_experiment(user: Any, experiment_id: uuid.UUID) -> Experiment | None:
    """The user's experiment (staff: anyone's), or None: others' are never revealed."""
    if not getattr(user, "is_authenticated", False):
        return None
    found = Experiment.objects.filter(pk=experiment_id)
    return (found if user.is_staff else found.filter(owner=user)).first()


def savings_line(user: Any, experiment_id: uuid.UUID | None) -> str:
    """The early-stopping line of the runs page filtered to one of the user's experiments."""
    experiment = visible_experiment(user, experiment_id) if experiment_id else None
    return savings(experiment).line if experiment is not None else ""
