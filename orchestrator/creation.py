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

from orchestrator import datastore, experiments, rules
from orchestrator.guard import Caller
from orchestrator.preflight import Checker, Verdict
from orchestrator.publisher import Publisher
from orchestrator.rundirs import Runs, RunState
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas import storage
from schemas.commands import CheckCommand, CreateCommand, ExperimentCommand, LifecycleCommand
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


def reject(
    publisher: Publisher,
    command: ExperimentCommand | LifecycleCommand,
    message: str,
    errors: dict[str, str] | None = None,
) -> None:
    """Answer a command with `rejected` and the reason (per field, for a pre-flight)."""
    publisher.status(
        getattr(command, "simulation_id", None), "rejected", command_id=command.command_id,
        experiment_id=getattr(command, "experiment_id", None), message=message, errors=errors,
    )  # fmt: skip


def queue_start(
    publisher: Publisher, sid: uuid.UUID, issued_by: str, command_id: uuid.UUID
) -> None:
    """Put a `start` for `sid` on nnt.commands (the shared group gives it to one member);
    the publisher signs it as this service."""
    publisher.command(
        LifecycleCommand(
            type="start", simulation_id=sid, issued_by=issued_by, command_id=command_id
        )
    )


class Creator:
    """Turns `create` commands into queued simulations; done once per command id."""

    def __init__(
        self,
        settings: OrchestratorSettings,
        publisher: Publisher,
        runs: Runs,
        checker: Checker | None = None,
    ) -> None:
        self.settings = settings
        self.publisher = publisher
        self.runs = runs
        self.checker = checker
        # Dataset files a create in flight has fetched but no run.json names yet: a delete
        # must not release them in between (fetches run on a worker thread).
        self.pins: collections.Counter[str] = collections.Counter()
        self.pin_lock = threading.Lock()

    def create(self, command: CreateCommand, caller: Caller) -> Deferred | None:
        """Validate, fetch datasets, write run dirs; queue one `start` per simulation.

        The command counts as handled (a redelivery is ignored) only once all of it is done:
        an orchestrator that dies half-way does it again when the command comes back.
        The runs belong to `caller` (the proven sender), whatever the command says.
        """
        try:
            config, model, plans = experiments.plans(command)
        except OrchestratorError as exc:
            reject(self.publisher, command, str(exc))
            self.runs.mark_done(command.command_id)
            return None
        problem = self._over_limits(caller, config, plans)
        if problem is not None:
            self._fail_all(command, caller, config, plans, problem[1])
            reject(self.publisher, command, problem[1], {problem[0]: problem[1]})
            self.runs.mark_done(command.command_id)
            return None

        def finish(result: object) -> None:
            try:
                self._created(command, caller, config, model, plans, result)
            except Exception as exc:  # noqa: BLE001 - answered, and retried if redelivered
                log.exception("experiment %s: create failed", command.experiment_id)
                reject(self.publisher, command, f"internal error: {exc}")

        if self._needs_check(command):
            return Deferred(lambda: self._fetch_and_check(command, config, model, plans), finish)
        if experiments.has_urls(config):
            return Deferred(lambda: self._fetch(config), finish)
        try:
            finish(self._fetch(config))
        except OrchestratorError as exc:
            finish(exc)
        return None

    def check(self, command: CheckCommand, caller: Caller) -> Deferred | None:
        """Pre-flight an experiment off the poll loop; answer accepted or rejected per field."""
        try:
            config, model, plans = experiments.plans(command)
        except OrchestratorError as exc:
            reject(self.publisher, command, str(exc), {"config": str(exc)})
            return None
        problem = self._over_limits(caller, config, plans)
        if problem is not None:
            reject(self.publisher, command, problem[1], {problem[0]: problem[1]})
            return None
        return Deferred(
            lambda: self._fetch_and_check(command, config, model, plans),
            lambda result: self._checked(command, caller, result),
        )

    def _over_limits(self, caller: Caller, config: Any, plans: list[Any]) -> tuple[str, str] | None:
        """(field, reason) when the experiment breaks the caller's account limits.

        Storage counts the uploads it names here; datasets still to be downloaded are counted
        once fetched (`_over_storage` in `_created` and `_checked`).
        """
        if caller.user_id is None:
            return None
        queued = sum(
            1
            for rd in self.runs.all()
            if rd.read().state == "queued" and rd.spec().owner_id == caller.user_id
        )
        return rules.creation_limits(
            caller.limits, caller.username, config.total_epochs, len(plans), queued
        ) or self._over_storage(caller, experiments.stored_paths(config, self.settings))

    def _over_storage(self, caller: Caller, paths: list[str]) -> tuple[str, str] | None:
        """(field, reason) when the datasets at `paths` would take the caller past
        max_storage_bytes (schemas/storage.py counts it as the web does)."""
        if caller.user_id is None or caller.limits.max_storage_bytes is None:
            return None  # the count reads every run.json: only where a limit is set
        held = self.runs.held(caller.user_id)
        new = storage.adding(held, paths)
        return rules.storage_limit(caller.limits, caller.username, sum(held.values()), new)

    def _fail_all(
        self, command: CreateCommand, caller: Caller, config: Any, plans: list[Any], message: str
    ) -> None:
        """Mark every run of a refused create failed, so no row waits as `queued` forever."""
        for plan in plans:
            self.publisher.status(
                plan.simulation_id, "failed", name=plan.name, tags=plan.tags, message=message,
                **self._described(command, caller, config),
            )  # fmt: skip

    def _needs_check(self, command: CreateCommand) -> bool:
        return (
            self.checker is not None
            and self.settings.nnt_preflight
            and not self.checker.has_passed(command)
        )

    def _fetch_and_check(
        self, command: ExperimentCommand, config: Any, model: Any, plans: list[Any]
    ) -> tuple[DatasetPaths, Verdict]:
        """Datasets fetched (pinned), then the trainer's verdict on one batch of them."""
        assert self.checker is not None
        datasets = self._fetch(config)
        try:
            return datasets, self.checker.run(command, config, model, plans[0], datasets)
        except BaseException:
            self._unpin(datasets)
            raise

    def _checked(self, command: CheckCommand, caller: Caller, result: object) -> None:
        """Answer a `check` on the poll loop (downloaded datasets count against storage)."""
        if isinstance(result, tuple):
            datasets, verdict = result
            self._unpin(datasets)
            problem = self._over_storage(caller, _paths(datasets))
            if problem is not None:
                verdict = Verdict({problem[0]: problem[1], **verdict.errors}, verdict.notes)
        elif isinstance(result, OrchestratorError):
            verdict = Verdict({"__all__": str(result)})
        else:
            log.error("experiment %s: pre-flight failed: %r", command.experiment_id, result)
            verdict = Verdict({"__all__": f"internal error: {result}"})
        if verdict.errors:
            reject(self.publisher, command, verdict.headline(), verdict.errors)
        else:
            self.publisher.status(
                None, "accepted", command_id=command.command_id,
                experiment_id=command.experiment_id, message=verdict.headline(),
                notes=verdict.notes or None,
            )  # fmt: skip
        self.publisher.flush()

    def _fetch(self, config: Any) -> DatasetPaths:
        """Local dataset paths, pinned against a concurrent delete's release (thread-safe)."""
        for _ in range(FETCH_TRIES):
            datasets = experiments.datasets_of(config, self.settings, self.runs.dataset)
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
        self,
        command: CreateCommand,
        caller: Caller,
        config: Any,
        model: Any,
        plans: list[Any],
        result: object,
    ) -> None:
        """The second half of `create`, on the poll loop: run dirs, statuses, starts."""
        if isinstance(result, tuple):  # checked: a failed check fails the runs, never runs them
            datasets, verdict = result
            result = datasets
            if verdict.errors:
                self._unpin(datasets)
                result = OrchestratorError(verdict.headline())
        if isinstance(result, DatasetPaths):
            dropped: list[str] = []
            try:
                if not self.runs.is_done(command.command_id):
                    dropped = self._write_or_refuse(command, caller, config, model, plans, result)
            finally:
                self._unpin(result)
            self.release(dropped)
        elif self.runs.is_done(command.command_id):
            return  # a second delivery's fetch: the first one answered
        elif isinstance(result, OrchestratorError):
            self._fail_all(command, caller, config, plans, str(result))
            reject(self.publisher, command, str(result))
        else:
            log.error("experiment %s: fetching failed: %r", command.experiment_id, result)
            reject(self.publisher, command, f"internal error: {result}")
        self.runs.mark_done(command.command_id)

    def _described(self, command: CreateCommand, caller: Caller, config: Any) -> dict[str, Any]:
        return {
            "experiment_id": command.experiment_id,
            "owner": caller.username,
            "owner_id": caller.user_id,
            "total_epochs": config.total_epochs,
            "config": config.model_dump(mode="json"),
        }

    def _write_or_refuse(
        self,
        command: CreateCommand,
        caller: Caller,
        config: Any,
        model: Any,
        plans: list[Any],
        datasets: DatasetPaths,
    ) -> list[str]:
        """Queue the runs, unless their datasets (downloads now counted) pass max_storage_bytes:
        then fail them and answer with the limit. Returns the downloads to drop (refused: they
        must not fill the disk the limit protects; uploads stay, as after any refusal)."""
        problem = self._over_storage(caller, _paths(datasets))
        if problem is None:
            self._write_and_queue(command, caller, config, model, datasets)
            return []
        self._fail_all(command, caller, config, plans, problem[1])
        reject(self.publisher, command, problem[1], {problem[0]: problem[1]})
        return experiments.fetched_paths(config, datasets)

    def _write_and_queue(
        self,
        command: CreateCommand,
        caller: Caller,
        config: Any,
        model: Any,
        datasets: DatasetPaths,
    ) -> None:
        described = self._described(command, caller, config)
        runs = experiments.write_runs(
            command, config, model, datasets, self.settings, caller.username, caller.user_id
        )
        for run in runs:
            sid = run.plan.simulation_id
            rd = self.runs.dir(sid)
            self.runs.record(rd, run.spec)
            with rd.locked():
                if rd.read().state != "queued":
                    continue  # a redelivered create: this one already moved on
                rd.write(RunState("queued"))
            self.publisher.status(
                sid, "queued", command_id=command.command_id, name=run.plan.name,
                tags=run.plan.tags, message="waiting for a free slot", **described,
            )  # fmt: skip
            queue_start(
                self.publisher, sid, caller.username, uuid.uuid5(command.command_id, str(sid))
            )
        self.publisher.status(
            None, "accepted", command_id=command.command_id, experiment_id=command.experiment_id,
            message=f"{len(runs)} simulation(s) queued",
        )  # fmt: skip
        self.publisher.flush()  # the starts are in Kafka before the create counts as done

    def release(self, datasets: list[str]) -> list[Path]:
        """Delete those of a deleted run's datasets nothing needs any more (pins included)."""
        with self.pin_lock:
            used = self.runs.datasets_in_use() | {str(Path(p).resolve()) for p in self.pins}
            removed = datastore.release(self.settings.datasets_dir, datasets, used)
        for path in removed:
            self.runs.drop_dataset(path.name)
        return removed


def _paths(datasets: DatasetPaths) -> list[str]:
    return [p for p in datasets.model_dump().values() if p]
