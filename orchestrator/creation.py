"""`create`: validate an experiment, fetch its datasets, write run dirs, queue one start each.

Downloads are slow, so a `create` with dataset URLs comes back as a `Deferred`: the consumer
runs the fetch on a worker thread and hands the result back to the poll loop, which finishes
the create there (all publishing stays on the loop's thread).
"""

from __future__ import annotations

import collections
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator import experiments, store
from orchestrator.publisher import Publisher
from orchestrator.rundirs import RunDir, RunState, is_done, mark_done
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas.commands import CreateCommand, LifecycleCommand
from schemas.run import DatasetPaths

log = logging.getLogger(__name__)
FETCH_TRIES = 3


@dataclass
class Deferred:
    """Slow work of a command: `run` off the poll loop, then `finish` on it.

    `finish` gets what `run` returned, or the exception it raised.
    """

    run: Callable[[], object]
    finish: Callable[[object], None]


def reject(publisher: Publisher, command: CreateCommand | LifecycleCommand, message: str) -> None:
    """Answer a command with `rejected` and the reason."""
    publisher.status(
        getattr(command, "simulation_id", None), "rejected", command_id=command.command_id,
        experiment_id=getattr(command, "experiment_id", None), message=message,
    )  # fmt: skip


def queue_start(
    publisher: Publisher, sid: uuid.UUID, issued_by: str, command_id: uuid.UUID
) -> None:
    """Put a `start` for `sid` on nnt.commands (the shared group gives it to one member)."""
    publisher.command(
        LifecycleCommand(
            type="start", simulation_id=sid, issued_by=issued_by, command_id=command_id
        )
    )


class Creator:
    """Turns `create` commands into queued simulations; done once per command id."""

    def __init__(self, settings: OrchestratorSettings, publisher: Publisher) -> None:
        self.settings = settings
        self.publisher = publisher
        # Dataset files a create in flight has fetched but no run.json names yet: a delete
        # must not release them in between (fetches run on a worker thread).
        self.pins: collections.Counter[str] = collections.Counter()
        self.pin_lock = threading.Lock()

    def create(self, command: CreateCommand) -> Deferred | None:
        """Validate, fetch datasets, write run dirs; queue one `start` per simulation.

        The command counts as handled (a redelivery is ignored) only once all of it is done:
        an orchestrator that dies half-way does it again when the command comes back.
        """
        try:
            config, model, plans = experiments.plans(command)
        except OrchestratorError as exc:
            reject(self.publisher, command, str(exc))
            mark_done(self.settings.claims_dir, command.command_id)
            return None

        def finish(result: object) -> None:
            try:
                self._created(command, config, model, plans, result)
            except Exception as exc:  # noqa: BLE001 - answered, and retried if redelivered
                log.exception("experiment %s: create failed", command.experiment_id)
                reject(self.publisher, command, f"internal error: {exc}")

        if experiments.has_urls(config):
            return Deferred(lambda: self._fetch(config), finish)
        try:
            finish(self._fetch(config))
        except OrchestratorError as exc:
            finish(exc)
        return None

    def _fetch(self, config: Any) -> DatasetPaths:
        """Local dataset paths, pinned against a concurrent delete's release (thread-safe)."""
        for _ in range(FETCH_TRIES):
            datasets = experiments.datasets_of(config, self.settings)
            paths = [p for p in datasets.model_dump().values() if p]
            with self.pin_lock:
                if all(Path(p).exists() for p in paths):  # a delete may have released one
                    self.pins.update(paths)
                    return datasets
        raise OrchestratorError("a dataset was removed while it was being stored; submit again")

    def _unpin(self, datasets: DatasetPaths) -> None:
        with self.pin_lock:
            self.pins.subtract(p for p in datasets.model_dump().values() if p)
            self.pins += collections.Counter()  # drop zero counts

    def _created(
        self, command: CreateCommand, config: Any, model: Any, plans: list[Any], result: object
    ) -> None:
        """The second half of `create`, on the poll loop: run dirs, statuses, starts."""
        if isinstance(result, DatasetPaths):
            try:
                if not is_done(self.settings.claims_dir, command.command_id):
                    self._write_and_queue(command, config, model, result)
            finally:
                self._unpin(result)
        elif is_done(self.settings.claims_dir, command.command_id):
            return  # a second delivery's fetch: the first one answered
        elif isinstance(result, OrchestratorError):
            for plan in plans:
                self.publisher.status(
                    plan.simulation_id, "failed", name=plan.name, tags=plan.tags,
                    message=str(result), **self._described(command, config),
                )  # fmt: skip
            reject(self.publisher, command, str(result))
        else:
            log.error("experiment %s: fetching failed: %r", command.experiment_id, result)
            reject(self.publisher, command, f"internal error: {result}")
        mark_done(self.settings.claims_dir, command.command_id)

    def _described(self, command: CreateCommand, config: Any) -> dict[str, Any]:
        return {
            "experiment_id": command.experiment_id,
            "owner": command.issued_by,
            "total_epochs": config.total_epochs,
            "config": config.model_dump(mode="json"),
        }

    def _write_and_queue(
        self, command: CreateCommand, config: Any, model: Any, datasets: DatasetPaths
    ) -> None:
        described = self._described(command, config)
        runs = experiments.write_runs(command, config, model, datasets, self.settings)
        for run in runs:
            sid = run.plan.simulation_id
            rd = RunDir(self.settings.runs_dir, sid)
            with rd.locked():
                if (rd.path / "state.json").exists() and rd.read().state != "queued":
                    continue  # a redelivered create: this one already moved on
                rd.write(RunState("queued"))
            self.publisher.status(
                sid, "queued", command_id=command.command_id, name=run.plan.name,
                tags=run.plan.tags, message="waiting for a free slot", **described,
            )  # fmt: skip
            queue_start(
                self.publisher, sid, command.issued_by, uuid.uuid5(command.command_id, str(sid))
            )
        self.publisher.status(
            None, "accepted", command_id=command.command_id, experiment_id=command.experiment_id,
            message=f"{len(runs)} simulation(s) queued",
        )  # fmt: skip
        self.publisher.flush()  # the starts are in Kafka before the create counts as done

    def release(self, datasets: list[str]) -> list[Path]:
        """Delete those of a deleted run's datasets nothing needs any more (pins included)."""
        with self.pin_lock:
            return store.release(
                self.settings.datasets_dir, self.settings.runs_dir, datasets, keep=set(self.pins)
            )
