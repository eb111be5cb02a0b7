"""The orchestrator's decisions: commands in, runs started and watched, every transition out.

Two streams of commands reach it (see `consumer.py`): `create` and `start` through the shared
consumer group (each handled by one member), and the lifecycle commands through a per-host
group (every member sees them; the owner of the run acts, or, for a run no host is running,
the first member to claim the command).
"""

from __future__ import annotations

import collections
import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from orchestrator import rules
from orchestrator.creation import Creator, Deferred, queue_start, reject
from orchestrator.guard import Accounts, Caller, Guard, Refused
from orchestrator.preflight import Checker
from orchestrator.publisher import Publisher
from orchestrator.rundirs import ACTIVE, RunDir, Runs, RunState
from orchestrator.runtime import Handle, Runtime
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas import codecs, epochs
from schemas.commands import CheckCommand, CreateCommand, ExperimentCommand, LifecycleCommand
from schemas.run import RunSpec
from schemas.status import Status

log = logging.getLogger(__name__)
LOG_REPEAT_S = 60.0


class CommandLog:
    """Command ids already handled, kept on disk so a restart does not act twice."""

    def __init__(self, path: Path, keep: int = 100_000) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().split() if path.exists() else []
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict.fromkeys(
            lines[-keep:]
        )

    def __contains__(self, command_id: uuid.UUID) -> bool:
        return str(command_id) in self.seen

    def add(self, command_id: uuid.UUID) -> bool:
        """Record the id once its work is done; False when it was recorded before."""
        key = str(command_id)
        if key in self.seen:
            return False
        self.seen[key] = None
        with self.path.open("a") as fh:
            fh.write(key + "\n")
        return True


class Orchestrator:
    """Runs of this host: live handles, the rules that watch them, and the shared run dirs."""

    def __init__(
        self, settings: OrchestratorSettings, runtime: Runtime, publisher: Publisher
    ) -> None:
        self.settings = settings
        self.host = settings.nnt_hostname
        self.runtime = runtime
        self.publisher = publisher
        self.commands = CommandLog(settings.state_dir / "commands.log")
        self.handles: dict[uuid.UUID, Handle] = {}
        self.watch = rules.Watch(settings)
        self.told_waiting: dict[uuid.UUID, str] = {}
        self.last_sample = 0.0
        self.last_logged: dict[tuple[uuid.UUID | None, str], float] = {}
        self.runs = open_runs(settings)
        self.last_beat = 0.0
        self.creator = Creator(settings, publisher, self.runs, Checker(settings, runtime))
        self.accounts = Accounts()
        self.guard = Guard(settings.command_secret(), self.accounts)

    # ---- the shared group: create and start -------------------------------------------------

    def on_work(self, value: bytes | None, stored_at: datetime | None = None) -> bool | Deferred:
        """Handle a command of the shared group (`stored_at`: when Kafka stored it).

        True: done (commit it). False: a `start` waits for a slot or quota (hold it, uncommitted).
        A Deferred: a `create` whose datasets must be downloaded; run it off the poll loop.
        """
        try:
            command = codecs.load_command(value or b"")
        except ValidationError as exc:
            log.warning("rejected undecodable command: %s", exc.errors()[:3])
            self.publisher.status(None, "rejected", message=f"invalid command: {_first_error(exc)}")
            return True
        if isinstance(command, LifecycleCommand) and command.type != "start":
            return True  # the per-host group acts on those
        try:
            caller = self.guard.admit(command, stored_at)
        except Refused as exc:
            log.warning("refused command %s: %s", command.command_id, exc)
            self._reject(command, str(exc))
            return True
        command = command.model_copy(update={"issued_by": caller.username})  # proven name
        try:
            if isinstance(command, CreateCommand):
                if self.runs.is_done(command.command_id):
                    return True
                return self.creator.create(command, caller) or True
            if isinstance(command, CheckCommand):
                return self.creator.check(command, caller) or True
            if command.type == "start":
                return self.start(command, caller)
        except Exception as exc:  # noqa: BLE001 - nothing a client sends may kill the loop
            log.exception("command %s failed", command.command_id)
            self._reject(command, f"internal error: {exc}")
        return True

    def has_slot(self) -> bool:
        """True while this host runs fewer than NNT_MAX_RUNS simulations."""
        return len(self.handles) < self.settings.nnt_max_runs

    def start(self, command: LifecycleCommand, caller: Caller) -> bool:
        """Start a queued simulation here when a slot and the owner's quota allow."""
        sid, rd = command.simulation_id, self.runs.dir(command.simulation_id)
        if not rd.exists():
            if self.runs.claim(command.command_id):
                self._reject(command, f"simulation {sid} is not known (deleted?)")
            return True
        with rd.locked():
            state = rd.read()
            if str(command.command_id) in state.starts:
                return True  # a redelivered start that already took effect
            if state.state != "queued":
                self._reject(command, f"cannot start a {state.state} simulation; resume it")
                return True
            spec = rd.spec()
            if not caller.may_act_on(spec.owner_id):
                self._reject(command, _not_yours(caller, sid))
                return True
            if not self.has_slot():
                n = self.settings.nnt_max_runs
                self._tell_waiting(sid, "slot", f"waiting for a free slot: {self.host} runs "
                                   f"{len(self.handles)} of NNT_MAX_RUNS={n}")  # fmt: skip
                return False
            verdict = rules.quota(
                self.settings, spec.owner, self._active_of(spec.owner_id, spec.owner),
                self._limits_of(spec.owner_id),
            )  # fmt: skip
            if verdict is not None:
                impossible, reason = verdict
                if impossible:
                    self._fail(rd, state, reason, command.command_id)
                    return True
                self._tell_waiting(sid, "quota", reason)
                return False
            self.told_waiting.pop(sid, None)
            self._launch(rd, state, self._sized(rd, spec), command.command_id)
        return True

    def _sized(self, rd: RunDir, spec: RunSpec) -> RunSpec:
        """The spec with the run's memory and CPUs as of this start (the owner's per-run limits
        may have changed since it was queued), written back to run.json so the runtime, the
        trainer and a restarted orchestrator all read the same values."""
        memory, cpus = rules.run_resources(self.settings, self._limits_of(spec.owner_id))
        if (spec.memory_bytes, spec.cpus) != (memory, cpus):
            spec = spec.model_copy(update={"memory_bytes": memory, "cpus": cpus})
            rd.write_spec(spec)
        return spec

    def _tell_waiting(self, sid: uuid.UUID, kind: str, reason: str) -> None:
        """Answer a held start with `queued` and why, once per kind of wait."""
        if self.told_waiting.get(sid) != kind:
            self.told_waiting[sid] = kind
            self.publisher.status(sid, "queued", message=reason)

    def _launch(self, rd: RunDir, state: RunState, spec: RunSpec, cid: uuid.UUID) -> None:
        sid = rd.simulation_id
        state.state, state.host, state.runtime, state.reason = (
            "starting",
            self.host,
            self.runtime.name,
            "",
        )
        rd.write(state)
        self.publisher.status(
            sid, "starting", command_id=cid, total_epochs=spec.config.total_epochs,
            message=f"starting on {self.host} ({self.runtime.name} runtime)",
        )  # fmt: skip
        try:
            spec = self.runs.prepare(rd, spec)
            handle = self.runtime.start(spec, rd.path)
        except FileNotFoundError as exc:
            self._fail(rd, state, f"could not start on {self.host}: {exc}", cid)
            return
        except OrchestratorError as exc:
            self._fail(rd, state, str(exc), cid)
            return
        except Exception as exc:  # noqa: BLE001 - a runtime failure fails the run, not us
            log.exception("simulation %s: start failed", sid)
            self._fail(rd, state, f"could not start: {exc}", cid)
            return
        state.state, state.pid, state.container = "running", handle.pid, handle.container
        state.handled(cid)
        rd.write(state)
        self.handles[sid] = handle
        self.watch.started(sid, memory=spec.memory_bytes)

    def _fail(
        self, rd: RunDir, state: RunState, message: str, cid: uuid.UUID | None = None
    ) -> None:
        state.state, state.message = "failed", message
        if cid is not None:
            state.handled(cid)
        rd.write(state)
        self.publisher.status(rd.simulation_id, "failed", message=message)

    def _active_of(self, owner_id: int | None, owner: str) -> list[RunState]:
        """The owner's active runs (by account id; by name for runs made before ids)."""
        active = []
        for rd in self.runs.active():
            state = rd.read()
            spec = rd.spec()
            if owner_id is not None:
                same = spec.owner_id == owner_id
            else:
                same = spec.owner_id is None and spec.owner == owner
            if same:
                active.append(state)
        return active

    def _limits_of(self, owner_id: int | None) -> Any:
        """The owner's limits from their account record (none known: the host's settings)."""
        account = self.accounts.get(owner_id) if owner_id is not None else None
        return account.limits if account is not None else None

    # ---- the per-host group: pause, resume, stop, delete --------------------------------------

    def on_broadcast(self, value: bytes | None, stored_at: datetime | None = None) -> None:
        """Handle a lifecycle command if this host owns the run (or claims an unowned one)."""
        try:
            command = codecs.load_command(value or b"")
        except ValidationError:
            return  # the shared group answers garbage once
        if isinstance(command, ExperimentCommand) or command.type == "start":
            return
        if command.command_id in self.commands:
            return
        try:
            caller = self.guard.admit(command, stored_at)
        except Refused as exc:
            if self.runs.claim(command.command_id):
                log.warning("refused command %s: %s", command.command_id, exc)
                self._reject(command, str(exc))
            self.commands.add(command.command_id)
            return
        command = command.model_copy(update={"issued_by": caller.username})  # proven name
        try:
            self.lifecycle(command, caller)
        except OrchestratorError as exc:
            self._reject(command, str(exc))
        except Exception as exc:  # noqa: BLE001
            log.exception("simulation %s: command %s failed", command.simulation_id,
                          command.command_id)  # fmt: skip
            self._reject(command, f"internal error: {exc}")
        # Recorded once answered: an orchestrator that dies half-way acts on the redelivery.
        self.commands.add(command.command_id)

    def lifecycle(self, command: LifecycleCommand, caller: Caller) -> None:
        """Act on pause/resume/stop/delete: as the owner, or as the claimer of an idle run."""
        sid, rd = command.simulation_id, self.runs.dir(command.simulation_id)
        if not rd.exists():
            if self.runs.claim(command.command_id):
                if command.type == "delete":
                    self.publisher.status(sid, "deleted", command_id=command.command_id,
                                          message="nothing was left to delete")  # fmt: skip
                else:
                    raise OrchestratorError(f"simulation {sid} is not known to the orchestrators")
            return
        with rd.locked():
            state = rd.read()
            mine = state.owned_by(self.host) and sid in self.handles
            if not mine and state.state in ACTIVE and state.state != "queued":
                return  # another host runs it and answers
            if not mine and not self.runs.claim(command.command_id):
                return
            if not caller.may_act_on(rd.spec().owner_id):
                raise OrchestratorError(_not_yours(caller, sid))
            action = getattr(self, f"_{command.type}")
            action(rd, state, command, mine)

    def _pause(self, rd: RunDir, state: RunState, cmd: LifecycleCommand, mine: bool) -> None:
        if not mine or state.state != "running":
            raise OrchestratorError(f"cannot pause a {state.state} simulation; only running ones")
        self.runtime.pause(self.handles[rd.simulation_id])
        self.watch.paused(rd.simulation_id)
        self._set(rd, state, "paused", cmd, f"paused by {cmd.issued_by or 'a client'}")

    def _resume(self, rd: RunDir, state: RunState, cmd: LifecycleCommand, mine: bool) -> None:
        sid = rd.simulation_id
        if mine and state.state == "paused":
            self.runtime.unpause(self.handles[sid])
            self.watch.resumed(sid)
            self._set(rd, state, "running", cmd, f"resumed by {cmd.issued_by or 'a client'}")
        elif not mine and state.state in ("stopped", "failed"):
            done = self.runs.checkpoint_epoch(rd, state)
            self._set(rd, state, "queued", cmd, f"resuming from the last checkpoint (epoch {done})")
            queue_start(self.publisher, sid, cmd.issued_by, uuid.uuid5(cmd.command_id, "start"))
            self.publisher.flush()
        else:
            raise OrchestratorError(f"cannot resume a {state.state} simulation")

    def _stop(self, rd: RunDir, state: RunState, cmd: LifecycleCommand, mine: bool) -> None:
        if mine:
            self.request_stop(rd.simulation_id, f"stopped by {cmd.issued_by or 'a client'}")
            self.publisher.status(rd.simulation_id, "accepted", command_id=cmd.command_id,
                                  message="stopping after the current batch; a checkpoint is kept")  # fmt: skip
        elif state.state == "queued":
            self._set(rd, state, "stopped", cmd, "stopped before it started")
        else:
            raise OrchestratorError(f"cannot stop a {state.state} simulation")

    def _delete(self, rd: RunDir, state: RunState, cmd: LifecycleCommand, mine: bool) -> None:
        sid = rd.simulation_id
        handle = self.handles.pop(sid, None)
        if handle is not None:
            self.runtime.kill(handle)
        self.watch.forget(sid)
        self.told_waiting.pop(sid, None)
        datasets = [p for p in rd.spec().datasets.model_dump().values() if p]
        state.state = "deleted"
        rd.write(state)
        self.runs.forget(rd)
        removed = self.creator.release(datasets)
        note = f"; {len(removed)} dataset file(s) no longer needed were removed" if removed else ""
        self.publisher.status(sid, "deleted", command_id=cmd.command_id,
                              message=f"deleted by {cmd.issued_by or 'a client'}{note}")  # fmt: skip

    def _set(
        self, rd: RunDir, state: RunState, status: Status, cmd: LifecycleCommand, message: str
    ) -> None:
        state.state, state.message = status, message
        rd.write(state)
        self.publisher.status(rd.simulation_id, status, command_id=cmd.command_id, message=message)

    def _reject(self, command: ExperimentCommand | LifecycleCommand, message: str) -> None:
        reject(self.publisher, command, message)

    def request_stop(self, sid: uuid.UUID, reason: str) -> None:
        """SIGTERM a run of this host; `reason` becomes its `stopped` message."""
        self.watch.stopping(sid, reason)
        self.runtime.stop(self.handles[sid])

    # ---- watching ------------------------------------------------------------------------------

    def on_epoch(self, value: bytes | None) -> None:
        """An epoch event: progress for the stall rule; a NaN/inf loss stops the run."""
        try:
            event = epochs.decode(value or b"")
        except ValueError:  # pydantic's ValidationError is one
            return
        sid = event.simulation_id
        if sid not in self.handles:
            return
        reason = self.watch.epoch(event)
        if reason:
            self._guarded(sid, "auto-stop", self.request_stop, sid, reason)

    def tick(self) -> None:
        """Notice ended runs; every few seconds sample resources and apply the stop rules.

        A runtime error (the container engine not answering) is logged with the run's id and
        retried on the next tick; it never stops the loop or the other runs' checks.
        """
        for sid, handle in list(self.handles.items()):
            self._guarded(sid, "exit check", self._check_exit, sid, handle)
        now = time.monotonic()
        if now - self.last_beat >= self.settings.nnt_host_timeout_seconds / 4:
            self.last_beat = now
            self._guarded(None, "host lease", self._beat)
        if now - self.last_sample < self.settings.nnt_resource_period:
            return
        self.last_sample = now
        for sid, handle in list(self.handles.items()):
            self._guarded(sid, "sampling", self._check_run, sid, handle)
            self._guarded(sid, "keeping its checkpoint", self.runs.keep_checkpoint,
                          self.runs.dir(sid))  # fmt: skip

    def _beat(self) -> None:
        """Renew this host's lease; take over the runs of hosts that lost theirs."""
        self.runs.beat()
        for sid, host, silent in self.runs.lost():
            self._guarded(sid, "take-over", self._take_over, sid, host, silent)

    def _take_over(self, sid: uuid.UUID, host: str, silent: float) -> None:
        """A run of a host silent for too long: running, it resumes from its last checkpoint
        on whichever host starts it; paused, it is stopped (its owner resumes it)."""
        rd = self.runs.dir(sid)
        with rd.locked():
            state = rd.read()
            if state.state not in ACTIVE or state.host != host:
                return  # another orchestrator took it over first
            done = self.runs.checkpoint_epoch(rd, state)
            lost = f"{host} stopped answering {silent:.0f} s ago (NNT_HOST_TIMEOUT_SECONDS)"
            state.host, state.pid, state.container = None, None, None
            if state.state == "paused":
                state.state, state.reason = "stopped", lost
                rd.write(state)
                self.publisher.status(sid, "stopped", epoch=done, message=f"{lost}; resume "
                                      f"to continue from epoch {done + 1}")  # fmt: skip
                return
            state.state = "queued"
            state.message = f"{lost}; taken over by {self.host}: resuming from epoch {done + 1}"
            rd.write(state)
            log.warning("simulation %s: %s", sid, state.message)
            self.publisher.status(sid, "queued", epoch=done, message=state.message)
            start_id = uuid.uuid5(sid, f"take-over {host} {state.at}")
            queue_start(self.publisher, sid, rd.spec().owner, start_id)
            self.publisher.flush()

    def _check_exit(self, sid: uuid.UUID, handle: Handle) -> None:
        code = self.runtime.exit_code(handle)
        if code is not None:
            del self.handles[sid]
            self._ended(sid, code)

    def _check_run(self, sid: uuid.UUID, handle: Handle) -> None:
        sample = self.runtime.sample(handle)
        if sample is not None:
            self.publisher.resources(sample)
        action = self.watch.check(sid, sample)
        if action == rules.KILL:
            self.runtime.kill(handle)
        elif action:
            self.request_stop(sid, action)

    def _guarded(
        self, sid: uuid.UUID | None, what: str, fn: Callable[..., None], *args: Any
    ) -> None:
        """Run one run's check; log a failure with its id (once a minute while it repeats)."""
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - one run's runtime error must not stop the loop
            now, key = time.monotonic(), (sid, what)
            if now - self.last_logged.get(key, -LOG_REPEAT_S) >= LOG_REPEAT_S:
                self.last_logged[key] = now
                log.exception("simulation %s: %s failed; retrying", sid, what)

    def _ended(self, sid: uuid.UUID, code: int) -> None:
        rd = self.runs.dir(sid)
        overdue = sid in self.watch.overdue
        reason = self.watch.forget(sid)
        if not rd.exists():
            return
        with rd.locked():
            self._guarded(sid, "keeping its checkpoint", self.runs.keep_checkpoint, rd)
            state = rd.read()
            spec = rd.spec()
            done, total = rules.checkpoint_epoch(rd.path), spec.config.total_epochs
            if reason and code in (-15, 143):
                code = 0  # SIGTERM before the trainer's handler was set: stopped, nothing lost
            if reason and overdue:
                grace = self.settings.nnt_stop_grace_seconds
                code = 0  # killed for ignoring SIGTERM: still a stop, resumable from a checkpoint
                reason = (
                    f"{reason}; killed: SIGTERM ignored for {grace:g} s (NNT_STOP_GRACE_SECONDS)"
                )
            early = rules.early_stop_message(rd.path) if code == 0 and done < total else None
            if early is not None:
                state.state, state.reason = "stopped", early  # the trainer published this stop
            elif code == 0 and (done < total or overdue):
                state.state, state.reason = "stopped", reason or "stopped"
                self.publisher.status(sid, "stopped", epoch=done, total_epochs=total,
                                      message=f"{state.reason}; resumes at epoch {done + 1}")  # fmt: skip
            elif code == 0:
                state.state = "finished"  # the trainer published its own `finished`
            elif code == 1:
                state.state = "failed"  # the trainer published its own error
            else:
                state.state = "failed"
                state.message = rules.exit_message(
                    code, reason, self.settings, rd.path, spec.memory_bytes
                )
                self.publisher.status(sid, "failed", epoch=done, message=state.message)
            rd.write(state)

    # ---- restart and shutdown ------------------------------------------------------------------

    def reconcile(self) -> None:
        """Re-adopt this host's runs that are still alive; fail the vanished; drop orphans."""
        self.runs.prune()
        self.runs.beat()
        for rd in self.runs.mine():
            state = rd.read()
            handle = (
                self.runtime.adopt(rd.simulation_id, rd.path, state)
                if state.runtime == self.runtime.name
                else None
            )
            if handle is None:
                self._ended(rd.simulation_id, self._exit_file_code(rd.path))
                continue
            self.handles[rd.simulation_id] = handle
            spec = rd.spec()
            self.watch.started(
                rd.simulation_id, paused=state.state == "paused", memory=spec.memory_bytes
            )
            if rules.checkpoint_epoch(rd.path) >= spec.config.total_epochs:
                # Training is over: the trainer is evaluating or has already published its
                # own `finished`; a `running` announced now would be newer than that and
                # leave the simulation shown running forever.
                continue
            current: Status = "paused" if state.state == "paused" else "running"
            self.publisher.status(rd.simulation_id, current,
                                  message=f"re-adopted by {self.host} after an orchestrator restart")  # fmt: skip
        self.runtime.orphans(set(self.handles))
        self.publisher.flush()

    def _exit_file_code(self, run_dir: Path) -> int:
        try:
            return int((run_dir / "exit").read_text())
        except (OSError, ValueError):
            return -1

    def shutdown(self, timeout: float | None = None) -> None:
        """Processes are checkpointed and stopped; containers keep running (re-adopted later).

        A process still alive NNT_STOP_GRACE_SECONDS (or `timeout`) after SIGTERM is killed.
        """
        if self.runtime.name == "process":
            for sid in list(self.handles):
                self._guarded(sid, "stop", self.request_stop, sid,
                              "orchestrator shut down; resume to continue")  # fmt: skip
            grace = self.settings.nnt_stop_grace_seconds if timeout is None else timeout
            deadline = time.monotonic() + grace
            while self.handles and time.monotonic() < deadline:
                self.tick()
                time.sleep(0.2)
            for sid, handle in list(self.handles.items()):
                self.runtime.kill(handle)
                del self.handles[sid]
                self._ended(sid, 0)
        self.publisher.flush()


def open_runs(settings: OrchestratorSettings) -> Runs:
    """The run record: in the database every host reaches (DATABASE_URL), else in NNT_HOME."""
    if settings.database_url is None:
        return Runs(settings)
    from orchestrator.shared import SharedRuns  # psycopg only where a database is used
    from store.database import StoreError

    try:
        return SharedRuns(settings, settings.database_url.get_secret_value())
    except StoreError as exc:
        raise OrchestratorError(
            f"DATABASE_URL: {exc}; start the database, or unset DATABASE_URL to keep the run "
            "record in NNT_HOME (one host)"
        ) from exc


def _not_yours(caller: Caller, sid: uuid.UUID) -> str:
    return (
        f"{caller.username or 'this client'} may not act on simulation {sid}: it belongs to "
        "another user (only its owner and staff may)"
    )


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "message"
    return f"{loc}: {err.get('msg')}"
