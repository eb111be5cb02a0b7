"""Quotas at start and the auto-stop rules: memory over its limit, NaN/inf loss, no progress."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path

from orchestrator.rundirs import RunState
from orchestrator.settings import OrchestratorSettings
from schemas.accounts import Limits
from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample

KILL = "kill"


def quota(
    settings: OrchestratorSettings,
    owner: str,
    active: list[RunState],
    limits: Limits | None = None,
) -> tuple[bool, str] | None:
    """None when `owner` may start one more run; else (impossible, reason).

    The account's limits (set by an admin, from `nnt.accounts`) win over the host's
    NNT_QUOTA_MAX_RUNS / NNT_QUOTA_MAX_MEMORY where they are set.
    """
    runs, runs_name = settings.nnt_quota_max_runs, "NNT_QUOTA_MAX_RUNS"
    memory, memory_name = settings.nnt_quota_max_memory, "NNT_QUOTA_MAX_MEMORY"
    if limits is not None and limits.max_concurrent_runs is not None:
        runs, runs_name = limits.max_concurrent_runs, "max_concurrent_runs"
    if limits is not None and limits.max_memory_bytes is not None:
        memory, memory_name = limits.max_memory_bytes, "max_memory_bytes"
    limit = settings.nnt_run_memory_bytes
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


def checkpoint_epoch(run_dir: Path) -> int:
    """Epochs held by the run's latest checkpoint (0 when none)."""
    try:
        return int(json.loads((run_dir / "checkpoints" / "latest.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError, TypeError):
        return 0


def exit_message(
    code: int, reason: str | None, settings: OrchestratorSettings, run_dir: Path
) -> str:
    """The `failed` message of a trainer that did not end by itself, with its last good epoch."""
    return f"{_exit_cause(code, reason, settings, run_dir)}{_resumable(run_dir)}"


def _exit_cause(
    code: int, reason: str | None, settings: OrchestratorSettings, run_dir: Path
) -> str:
    if reason:
        return f"{reason} (trainer exit code {code})"
    if code == 137:
        return (
            f"killed: memory over its limit of {settings.nnt_run_memory_bytes} bytes "
            "(NNT_RUN_MEMORY_BYTES)"
        )
    if code == -1:
        return "the trainer vanished (host restart or killed outside the orchestrator)"
    if code < 0:  # Popen's returncode for a process ended by a signal
        return f"trainer process killed by signal {-code} ({_signal_name(-code)})"
    return f"trainer exited with code {code}; log: {run_dir / 'trainer.log'}"


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

    def started(self, sid: uuid.UUID, paused: bool = False) -> None:
        """A run began (or was re-adopted): its stall clock starts now."""
        self.progress[sid] = time.monotonic()
        if paused:
            self.frozen.add(sid)

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
        limit = self.settings.nnt_run_memory_bytes
        if sample is not None and sample.memory_bytes > limit:
            if sid in self.reasons:
                return KILL if sample.memory_bytes > 1.5 * limit else None
            return f"auto-stop: memory {sample.memory_bytes} bytes over its limit of {limit}"
        stalled = time.monotonic() - self.progress.get(sid, time.monotonic())
        if (
            sid not in self.frozen
            and sid not in self.reasons
            and stalled > self.settings.nnt_stall_seconds
        ):
            return f"auto-stop: no progress for {int(stalled)} s (NNT_STALL_SECONDS={self.settings.nnt_stall_seconds:g})"
        return None
