"""Pre-flight checks of experiments, run as a short trainer in this host's runtime.

A `check` command (sent by the web before it creates anything) and every `create` whose exact
experiment has not passed here yet go through `Checker.run`: the trainer, in the same process
or container hardening as a real run, builds the model and passes one real batch through each
optimizer/loss/metric of the grid, then writes what it found (`trainer/preflight.py`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.runtime import Runtime
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.commands import ExperimentCommand
from schemas.experiment import ExperimentConfig, SimulationPlan
from schemas.run import CHECK_FILE, RUN_SPEC_FILE, DatasetPaths, RunSpec

log = logging.getLogger(__name__)
POLL_S = 0.2
PASSED_KEEP = 10_000


@dataclass
class Verdict:
    """Per-field problems (none: the experiment may run) and notes for the user."""

    errors: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def headline(self) -> str:
        """One line for a status message: the first problem with its field."""
        if not self.errors:
            return "pre-flight passed"
        key, text = next(iter(self.errors.items()))
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"pre-flight: {key}: {text}{more}"


def digest(command: ExperimentCommand) -> str:
    """Content hash of an experiment (configuration, model, dataset references)."""
    text = json.dumps(command.experiment, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class Checker:
    """Runs pre-flight checks through the runtime; remembers the experiments that passed."""

    def __init__(self, settings: OrchestratorSettings, runtime: Runtime) -> None:
        self.settings, self.runtime = settings, runtime
        self.passed: dict[str, None] = {}
        self.lock = threading.Lock()

    def has_passed(self, command: ExperimentCommand) -> bool:
        """True when this exact experiment passed a check on this host."""
        with self.lock:
            return digest(command) in self.passed

    def run(
        self,
        command: ExperimentCommand,
        config: ExperimentConfig,
        model: dict[str, Any],
        plan: SimulationPlan,
        datasets: DatasetPaths,
    ) -> Verdict:
        """Check the experiment in a trainer of this runtime (blocking: call off the loop)."""
        check_id = uuid.uuid5(command.command_id, "check")
        work = self.settings.state_dir / "checks" / str(check_id)
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        spec = RunSpec(
            simulation_id=check_id, experiment_id=command.experiment_id, name="pre-flight",
            owner=command.issued_by, config=config, plan=plan, model=model, datasets=datasets,
            kafka_bootstrap=self.settings.nnt_kafka_bootstrap,
            allow_pickle=self.settings.nnt_allow_pickle, mode="check",
        )  # fmt: skip
        (work / RUN_SPEC_FILE).write_text(spec.model_dump_json())
        try:
            verdict = self._execute(spec, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        if not verdict.errors:
            self._remember(command)
        log.info("experiment %s: %s", command.experiment_id, verdict.headline())
        return verdict

    def _execute(self, spec: RunSpec, work: Path) -> Verdict:
        started = time.monotonic()
        try:
            handle = self.runtime.start(spec, work)
        except OrchestratorError as exc:
            return Verdict({"__all__": f"the pre-flight check could not start: {exc}"})
        limit = self.settings.nnt_preflight_seconds
        try:
            while (code := self.runtime.exit_code(handle)) is None:
                if time.monotonic() - started > limit:
                    return Verdict({"__all__": _too_slow(limit)})
                time.sleep(POLL_S)
        finally:
            self.runtime.kill(handle)
        return _read(work, code)

    def _remember(self, command: ExperimentCommand) -> None:
        with self.lock:
            self.passed[digest(command)] = None
            while len(self.passed) > PASSED_KEEP:
                self.passed.pop(next(iter(self.passed)))


def _too_slow(limit: float) -> str:
    return (
        f"the pre-flight check took longer than {limit:g} s (NNT_PREFLIGHT_SECONDS); the "
        "model or the data may be too large for one batch on this host"
    )


def _read(work: Path, code: int) -> Verdict:
    """The trainer's findings, or why there are none (its log's last line)."""
    try:
        found = json.loads((work / CHECK_FILE).read_text())
        return Verdict(dict(found.get("errors", {})), list(found.get("notes", [])))
    except (OSError, ValueError, AttributeError):
        pass
    last = ""
    log_file = work / "trainer.log"
    if log_file.is_file():
        lines = [ln for ln in log_file.read_text(errors="replace").splitlines() if ln.strip()]
        last = lines[-1][-300:] if lines else ""
    reason = f"the pre-flight check ended with exit code {code} and no answer"
    return Verdict({"__all__": f"{reason}: {last}" if last else reason})
