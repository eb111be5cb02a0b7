"""Turn a `create` command into run directories, one per simulation of the grid."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.commands import CreateCommand
from schemas.experiment import ExperimentConfig, SimulationPlan, error_fields, expand
from schemas.run import RUN_SPEC_FILE, DatasetPaths, RunSpec

STORED = re.compile(r"^stored:([0-9a-f]{64}\.[a-z0-9]{1,8})$")


@dataclass
class PreparedRun:
    """A simulation ready to start: its plan and run directory."""

    plan: SimulationPlan
    run_dir: Path
    spec: RunSpec


def parse_experiment(command: CreateCommand) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Split the command's payload into the validated configuration and the model JSON."""
    payload = dict(command.experiment)
    model = payload.pop("model", None)
    if isinstance(model, str):
        try:
            model = json.loads(model)
        except ValueError as exc:
            raise OrchestratorError(f"experiment.model: not valid JSON ({exc})") from exc
    if not isinstance(model, dict):
        raise OrchestratorError("experiment.model: the Keras model JSON is required (an object)")
    try:
        config = ExperimentConfig.model_validate(payload)
    except ValidationError as exc:
        detail = "; ".join(f"experiment.{k}: {v}" for k, v in error_fields(exc).items())
        raise OrchestratorError(detail) from exc
    return config, model


def resolve_dataset(ref: str | None, settings: OrchestratorSettings) -> str | None:
    """Map a stored-file reference to its local path; other schemes are refused for now."""
    if ref is None:
        return None
    match = STORED.match(ref)
    if match:
        path = settings.datasets_dir / match.group(1)
        if not path.is_file():
            raise OrchestratorError(f"dataset {ref} is not in the store; upload it again")
        return str(path)
    if ref.startswith(("http://", "https://")):
        raise OrchestratorError(
            f"dataset URL {ref!r}: URL datasets are not supported yet; upload the file"
        )
    raise OrchestratorError(
        f"dataset {ref!r}: use an upload (stored:<sha256>.<ext>) or an http(s) URL"
    )


def prepare(command: CreateCommand, settings: OrchestratorSettings) -> list[PreparedRun]:
    """Validate, expand the grid and write each simulation's run.json."""
    config, model = parse_experiment(command)
    datasets = DatasetPaths(
        train=resolve_dataset(config.dataset_train, settings) or "",
        test=resolve_dataset(config.dataset_test, settings),
        val=resolve_dataset(config.dataset_val, settings),
    )
    runs = []
    for plan in expand(command.experiment_id, config):
        run_dir = settings.runs_dir / str(plan.simulation_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            simulation_id=plan.simulation_id,
            experiment_id=command.experiment_id,
            name=plan.name,
            owner=command.issued_by,
            config=config,
            plan=plan,
            model=model,
            datasets=datasets,
            kafka_bootstrap=settings.nnt_kafka_bootstrap,
            allow_pickle=settings.nnt_allow_pickle,
        )
        (run_dir / RUN_SPEC_FILE).write_text(spec.model_dump_json(indent=1))
        runs.append(PreparedRun(plan, run_dir, spec))
    return runs


def load_spec(run_dir: Path) -> RunSpec:
    """Read a run directory's spec back."""
    return RunSpec.model_validate_json((run_dir / RUN_SPEC_FILE).read_text())


def known_run(settings: OrchestratorSettings, simulation_id: uuid.UUID) -> Path | None:
    """The run directory of a simulation this host prepared, if any."""
    path = settings.runs_dir / str(simulation_id)
    return path if (path / RUN_SPEC_FILE).exists() else None
