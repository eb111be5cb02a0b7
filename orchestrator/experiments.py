"""Turn a `create` command into run directories, one per simulation of the grid."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import fetch
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.commands import CreateCommand, ExperimentCommand
from schemas.experiment import ExperimentConfig, SimulationPlan, error_fields, expand
from schemas.run import RUN_SPEC_FILE, DatasetPaths, RunSpec

STORED = re.compile(r"^stored:([0-9a-f]{64}\.[a-z0-9]{1,8})$")


@dataclass
class PreparedRun:
    """A simulation ready to start: its plan and run directory."""

    plan: SimulationPlan
    run_dir: Path
    spec: RunSpec


def parse_experiment(command: ExperimentCommand) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Split the command's payload into the validated configuration and the model JSON."""
    payload = dict(command.experiment)
    model = payload.pop("model", None)
    if isinstance(model, str):
        try:
            model = json.loads(model)
        except (ValueError, RecursionError) as exc:
            raise OrchestratorError(
                f"experiment.model: not valid JSON ({type(exc).__name__})"
            ) from exc
    if not isinstance(model, dict):
        raise OrchestratorError("experiment.model: the Keras model JSON is required (an object)")
    try:
        config = ExperimentConfig.model_validate(payload)
    except ValidationError as exc:
        detail = "; ".join(f"experiment.{k}: {v}" for k, v in error_fields(exc).items())
        raise OrchestratorError(detail) from exc
    return config, model


def resolve_dataset(
    ref: str | None,
    settings: OrchestratorSettings,
    present: Callable[[Path], bool] = Path.is_file,
) -> str | None:
    """Map a stored-file reference to its path; fetch an http(s) URL into the store.

    `present(path)` says whether a stored file is (or has now been brought) on this host.
    """
    if ref is None:
        return None
    match = STORED.match(ref)
    if match:
        path = settings.datasets_dir / match.group(1)
        if not present(path):
            raise OrchestratorError(f"dataset {ref} is not in the store; upload it again")
        return str(path)
    if ref.startswith(("http://", "https://")):
        stored = fetch.fetch(
            ref,
            settings.datasets_dir,
            settings.nnt_max_dataset_bytes,
            settings.nnt_fetch_timeout,
            settings.nnt_url_allow_loopback,
            settings.nnt_fetch_total_seconds,
        )
        return str(stored)
    raise OrchestratorError(
        f"dataset {ref!r}: use an upload (stored:<sha256>.<ext>) or an http(s) URL"
    )


def datasets_of(
    config: ExperimentConfig,
    settings: OrchestratorSettings,
    present: Callable[[Path], bool] = Path.is_file,
) -> DatasetPaths:
    """Local paths of the experiment's datasets (a URL used twice is fetched once)."""
    cache: dict[str, str | None] = {}

    def one(ref: str | None) -> str | None:
        key = ref or ""
        if key not in cache:
            cache[key] = resolve_dataset(ref, settings, present)
        return cache[key]

    return DatasetPaths(
        train=one(config.dataset_train) or "",
        test=one(config.dataset_test),
        val=one(config.dataset_val),
    )


def stored_paths(config: ExperimentConfig, settings: OrchestratorSettings) -> list[str]:
    """Store paths of the experiment's uploads (`stored:` references), known before any
    download; one missing from the store is left to `resolve_dataset` to name."""
    refs = (config.dataset_train, config.dataset_test, config.dataset_val)
    matches = (STORED.match(ref or "") for ref in refs)
    return [str(settings.datasets_dir / m.group(1)) for m in matches if m]


def fetched_paths(config: ExperimentConfig, datasets: DatasetPaths) -> list[str]:
    """The local files of those datasets the experiment names by URL (downloaded for it)."""
    pairs = (
        (config.dataset_train, datasets.train),
        (config.dataset_test, datasets.test),
        (config.dataset_val, datasets.val),
    )
    return [path for ref, path in pairs if path and ref and ref.startswith(("http://", "https://"))]


def has_urls(config: ExperimentConfig) -> bool:
    """True when a dataset must be downloaded (slow: done off the poll loop)."""
    refs = (config.dataset_train, config.dataset_test, config.dataset_val)
    return any(r and r.startswith(("http://", "https://")) for r in refs)


def plans(
    command: ExperimentCommand,
) -> tuple[ExperimentConfig, dict[str, Any], list[SimulationPlan]]:
    """Validate the command and expand its grid (no file is touched)."""
    config, model = parse_experiment(command)
    return config, model, expand(command.experiment_id, config)


def write_runs(
    command: CreateCommand,
    config: ExperimentConfig,
    model: dict[str, Any],
    datasets: DatasetPaths,
    settings: OrchestratorSettings,
    owner: str,
    owner_id: int | None,
) -> list[PreparedRun]:
    """Write each simulation's run.json (deterministic ids: a redelivery rewrites the same)."""
    runs = []
    for plan in expand(command.experiment_id, config):
        run_dir = settings.runs_dir / str(plan.simulation_id)
        run_dir.mkdir(parents=True, exist_ok=True)
        spec = RunSpec(
            simulation_id=plan.simulation_id,
            experiment_id=command.experiment_id,
            name=plan.name,
            owner=owner,
            owner_id=owner_id,
            config=config,
            plan=plan,
            model=model,
            datasets=datasets,
            kafka_bootstrap=settings.nnt_kafka_bootstrap,
            allow_pickle=settings.nnt_allow_pickle,
        )
        tmp = run_dir / f".{RUN_SPEC_FILE}.tmp"
        tmp.write_text(spec.model_dump_json(indent=1))
        tmp.replace(run_dir / RUN_SPEC_FILE)
        runs.append(PreparedRun(plan, run_dir, spec))
    return runs
