"""Creating an experiment: validate the upload, store datasets, insert rows, send `create`."""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from django.db import transaction
from pydantic import ValidationError

from schemas.experiment import ExperimentConfig, error_fields, expand
from web.errors import Invalid
from web.simulations import commands, storage
from web.simulations.models import Experiment, Simulation

log = logging.getLogger(__name__)
DATASET_FIELDS = ("dataset_train", "dataset_test", "dataset_val")


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
    return data


def validate(raw: dict[str, Any]) -> ExperimentConfig:
    """Appendix-A validation, errors per field."""
    try:
        return ExperimentConfig.model_validate(raw)
    except ValidationError as exc:
        raise Invalid("invalid experiment configuration", error_fields(exc)) from None


def check(raw: dict[str, Any], files: dict[str, Upload | None]) -> None:
    """Validate before any file is written: an uploaded dataset stands in for its field."""
    placeholders = {f: "stored:pending" for f, upload in files.items() if upload is not None}
    for field, upload in files.items():
        if upload is not None:
            storage.extension(upload.name or "", field)
    validate(raw | placeholders)


def attach_datasets(raw: dict[str, Any], files: dict[str, Upload | None], root: Path) -> dict[str, Any]:
    """Store uploaded datasets and point the config at them (uploads win over URLs)."""
    out = dict(raw)
    for field in DATASET_FIELDS:
        upload = files.get(field)
        if upload is not None:
            ext = storage.extension(upload.name or "", field)
            out[field] = storage.store(upload.chunks(), ext, root)
    return out


def create(owner: Any, raw: dict[str, Any], model: dict[str, Any]) -> Created:
    """Insert the experiment and its simulations and send `create`, all or nothing."""
    config = validate(raw)
    experiment_id = uuid.uuid4()
    plans = expand(experiment_id, config)
    username = owner.get_username()
    with transaction.atomic():
        experiment = Experiment.objects.create(
            id=experiment_id, owner=owner, name=config.name,
            config=config.model_dump(mode="json"), model_json=model,
        )
        Simulation.objects.bulk_create([
            Simulation(id=plan.simulation_id, experiment=experiment, owner=owner,
                       owner_name=username, name=plan.name, tags=plan.tags, index=plan.index,
                       total_epochs=config.total_epochs, status="queued",
                       config=plan.model_dump(mode="json"))
            for plan in plans
        ])
        # Publish inside the transaction: if Kafka fails, the rows roll back.
        commands.publish(commands.create_command(experiment_id, config, model, username))
    log.info("experiment %s created with %d simulations", experiment_id, len(plans))
    return Created(experiment_id, [p.simulation_id for p in plans])
