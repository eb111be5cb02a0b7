"""Quotas at create and start, each run's resources, and the auto-stop rules: memory over its
limit, NaN/inf loss, no progress."""

from __future__ import annotations

import signal
import time
import uuid
from pathlib import Path

from orchestrator.rundirs import RunState, checkpoint_epoch
from orchestrator.settings import OrchestratorSettings
from schemas import storage
from schemas.accounts import Limits
from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample
from schemas.status import EARLY_STOP_FILE, StatusEvent

KILL = "kill"


def run_resources(settings: OrchestratorSettings, limits: Limits | None) -> tuple[int, float]:
    """(memory bytes, CPUs) of one run of this owner: the host's NNT_RUN_MEMORY_BYTES and
    NNT_RUN_CPUS, lowered to the account's max_run_memory_bytes / max_run_cpus where set (a
    per-user limit never raises what the host gives a run)."""
    memory, cpus = settings.nnt_run_memory_bytes, settings.nnt_run_cpus
    if limits is not None and limits.max_run_memory_bytes is not None:
        memory = min(memory, limits.max_run_memory_bytes)
    if limits is not None and limits.max_run_cpus is not None:
        cpus = min(cpus, limits.max_run_cpus)
    return memory, cpus


def run_memory_name(settings: OrchestratorSettings, memory: int) -> str:
    """The limit that sets a run's memory: the account's when it is below the host's."""
    return (
        "max_run_memory_bytes" if memory < settings.nnt_run_memory_bytes else "NNT_RUN_MEMORY_BYTES"
    )


def quota(
    settings: OrchestratorSettings,
    owner: str,
    active: list[RunState],
    limits: Limits | None = None,
) -> tuple[bool, str] | None:
    """None when `owner` may start one more run; else (impossible, reason).

    The account's limits (set by an admin, from `nnt.accounts`) win over the host's
    NNT_QUOTA_MAX_RUNS / NNT_QUOTA_MAX_MEMORY where they are set; each run counts the memory
    it is given (`run_resources`: the account's max_run_memory_bytes lets more runs fit).
    """
    runs, runs_name = settings.nnt_quota_max_runs, "NNT_QUOTA_MAX_RUNS"
    memory, memory_name = settings.nnt_quota_max_memory, "NNT_QUOTA_MAX_MEMORY"
    if limits is not None and limits.max_concurrent_runs is not None:
        runs, runs_name = limits.max_concurrent_runs, "max_concurrent_runs"
    if limits is not None and limits.max_memory_bytes is not None:
        memory, memory_name = limits.max_memory_bytes, "max_memory_bytes"
    limit = run_resources(settings, limits)[0]
    who = owner or "this owner"
    if memory and limit > memory:
        return True, (
            f"quota: one run needs {limit} bytes of memory, more than {memory_name}={memory} "
            f"allows {who}"
        )
    if runs_name == "max_concurrent_runs" and runs == 0:
        return True, f"quota: {who} may run no simulation (max_concurrent_runs=0)"
    if runs and len(active) >= runs:
        return False, (
            f"waiting for quota: {who} already has {len(active)} active run(s), {runs_name}={runs}"
        )
    if memory and (len(active) + 1) * limit > memory:
        return False, (
            f"waiting for quota: {who} would use {(len(active) + 1) * limit} bytes of memory, "
            f"{memory_name}={memory}"
        )
    return None


def creation_limits(
    limits: Limits | None, who: str, total_epochs: int, runs: int, queued: int
) -> tuple[str, str] | None:
    """(field, reason) when an experiment breaks its owner's creation limits, else None."""
    if limits is None:
        return None
    if limits.max_epochs is not None and total_epochs > limits.max_epochs:
        return "total_epochs", (
            f"{total_epochs} epochs is over {who}'s limit of {limits.max_epochs} "
            "(max_epochs); ask an admin or train fewer epochs"
        )
    if limits.max_runs_per_experiment is not None and runs > limits.max_runs_per_experiment:
        return "__all__", (
            f"the grid makes {runs} simulations, over {who}'s limit of "
            f"{limits.max_runs_per_experiment} per experiment (max_runs_per_experiment); "
            "use fewer optimizers, losses, learning rates or folds"
        )
    if limits.max_queued_runs is not None and queued + runs > limits.max_queued_runs:
        return "__all__", (
            f"{who} has {queued} run(s) waiting; {runs} more would pass the limit of "
            f"{limits.max_queued_runs} queued runs (max_queued_runs); wait for some to start "
            "or delete some"
        )
    return None


def storage_limit(limits: Limits | None, who: str, used: int, new: int) -> tuple[str, str] | None:
    """(field, reason) when `new` dataset bytes on top of the `used` ones pass the account's
    max_storage_bytes (counted by schemas/storage.py, as the web counts them), else None."""
    reason = storage.refusal(who, used, new, limits.max_storage_bytes if limits else None)
    return None if reason is None else ("__all__", reason)


def exit_message(
    code: int,
    reason: str | None,
    settings: OrchestratorSettings,
    run_dir: Path,
    memory: int | None = None,
) -> str:
    """The `failed` message of a trainer that did not end by itself, with its last good epoch
    (`memory`: the run's own memory limit, from its spec; None: the host's)."""
    return f"{_exit_cause(code, reason, settings, run_dir, memory)}{_resumable(run_dir)}"


def _exit_cause(
    code: int,
    reason: str | None,
    settings: OrchestratorSettings,
    run_dir: Path,
    memory: int | None,
) -> str:
    if reason:
        return f"{reason} (trainer exit code {code})"
    if code == 137:
        limit = memory or settings.nnt_run_memory_bytes
        return (
            f"killed: memory over its limit of {limit} bytes ({run_memory_name(settings, limit)})"
        )
    if code == -1:
        return "the trainer vanished (host restart or killed outside the orchestrator)"
    if code < 0:  # Popen's returncode for a process ended by a signal
        return f"trainer process killed by signal {-code} ({_signal_name(-code)})"
    return f"trainer exited with code {code}; log: {run_dir / 'trainer.log'}"


def early_stop_message(run_dir: Path) -> str | None:
    """The message of the `stopped` event the trainer published when the experiment's
    early-stop rule ended its run (trainer/earlystop.py), or None when it did not."""
    try:
        event = StatusEvent.model_validate_json((run_dir / EARLY_STOP_FILE).read_bytes())
    except (OSError, ValueError):  # no file, or a torn one: a plain stop
        return None
    return event.message if event.early_stop is not None else None


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return "unknown signal"


def _resumable(run_dir: Path) -> str:
    done = checkpoint_epoch(run_dir)
    if not done:
        return "; no epoch was checkpointed, a resume starts from the beginning"
    return f"; last good epoch {done} (checkpointed), a resume continues at epoch {done + 1}"


class Watch:
    """Per-run progress clocks and stop reasons of this host's runs."""

    def __init__(self, settings: OrchestratorSettings) -> None:
        self.settings = settings
        self.progress: dict[uuid.UUID, float] = {}
        self.frozen: set[uuid.UUID] = set()
        self.reasons: dict[uuid.UUID, str] = {}
        self.stop_asked: dict[uuid.UUID, float] = {}
        self.overdue: set[uuid.UUID] = set()
        self.memory: dict[uuid.UUID, int] = {}  # each run's own limit (run_resources)

    def started(self, sid: uuid.UUID, paused: bool = False, memory: int | None = None) -> None:
        """A run began (or was re-adopted): its stall clock starts now; `memory` is its own
        limit (run_resources), None for the host's."""
        self.progress[sid] = time.monotonic()
        if paused:
            self.frozen.add(sid)
        if memory is not None:
            self.memory[sid] = memory

    def paused(self, sid: uuid.UUID) -> None:
        """A frozen run makes no progress on purpose."""
        self.frozen.add(sid)

    def resumed(self, sid: uuid.UUID) -> None:
        """Thawed: the stall clock restarts."""
        self.frozen.discard(sid)
        self.progress[sid] = time.monotonic()

    def stopping(self, sid: uuid.UUID, reason: str) -> None:
        """Remember why the run is asked to stop (the first reason wins)."""
        self.reasons.setdefault(sid, reason)
        self.stop_asked.setdefault(sid, time.monotonic())
        self.frozen.discard(sid)

    def forget(self, sid: uuid.UUID) -> str | None:
        """The run ended; returns why it was stopped, if it was."""
        self.progress.pop(sid, None)
        self.frozen.discard(sid)
        self.stop_asked.pop(sid, None)
        self.overdue.discard(sid)
        self.memory.pop(sid, None)
        return self.reasons.pop(sid, None)

    def epoch(self, event: EpochEvent) -> str | None:
        """Progress; a stop reason when the loss is not finite (the schema carries it as null)."""
        self.progress[event.simulation_id] = time.monotonic()
        if "loss" in event.metrics and event.metrics["loss"] is None:
            if event.simulation_id in self.reasons:
                return None
            return f"auto-stop: loss is NaN or inf at epoch {event.epoch}"
        return None

    def check(self, sid: uuid.UUID, sample: ResourceSample | None) -> str | None:
        """A stop reason (or KILL) from the latest sample and the stall clock, else None."""
        asked = self.stop_asked.get(sid)
        if asked is not None and time.monotonic() - asked > self.settings.nnt_stop_grace_seconds:
            self.overdue.add(sid)  # it ignored SIGTERM: kill it (it resumes from a checkpoint)
            return KILL
        limit = self.memory.get(sid, self.settings.nnt_run_memory_bytes)
        if sample is not None and sample.memory_bytes > limit:
            if sid in self.reasons:
                return KILL if sample.memory_bytes > 1.5 * limit else None
            return (
                f"auto-stop: memory {sample.memory_bytes} bytes over its limit of {limit} "
                f"({run_memory_name(self.settings, limit)})"
            )
        stalled = time.monotonic() - self.progress.get(sid, time.monotonic())
        if (
            sid not in self.frozen
            and sid not in self.reasons
            and stalled > self.settings.nnt_stall_seconds
        ):
            return f"auto-stop: no progress for {int(stalled)} s (NNT_STALL_SECONDS={self.settings.nnt_stall_seconds:g})"
        return None
