"""The command loop: validate, de-duplicate, act, answer on `nnt.status`."""

from __future__ import annotations

import collections
import logging
import signal
import threading
import uuid
from pathlib import Path

from confluent_kafka import Consumer, KafkaError
from pydantic import ValidationError

from orchestrator import experiments
from orchestrator.publisher import StatusPublisher
from orchestrator.runtime import Handle, Runtime
from orchestrator.settings import OrchestratorError, OrchestratorSettings
from schemas import codecs, topics
from schemas.commands import CreateCommand, LifecycleCommand

log = logging.getLogger(__name__)


class CommandLog:
    """Command ids already handled, kept on disk so a restart does not act twice."""

    def __init__(self, path: Path, keep: int = 100_000) -> None:
        self.path = path
        self.keep = keep
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = path.read_text().split() if path.exists() else []
        self.seen: collections.OrderedDict[str, None] = collections.OrderedDict.fromkeys(
            lines[-keep:]
        )

    def add(self, command_id: uuid.UUID) -> bool:
        """Record the id; False when it was seen before."""
        key = str(command_id)
        if key in self.seen:
            return False
        self.seen[key] = None
        with self.path.open("a") as fh:
            fh.write(key + "\n")
        return True


class Orchestrator:
    """Owns the runs of this host: a queue, the live handles and their states."""

    def __init__(
        self, settings: OrchestratorSettings, runtime: Runtime, publisher: StatusPublisher
    ) -> None:
        self.settings = settings
        self.runtime = runtime
        self.publisher = publisher
        self.commands = CommandLog(settings.nnt_home / "orchestrator" / "commands.log")
        self.queue: collections.deque[uuid.UUID] = collections.deque()
        self.handles: dict[uuid.UUID, Handle] = {}
        self.state: dict[uuid.UUID, str] = {}
        self.expected_exit: set[uuid.UUID] = set()

    def handle_message(self, value: bytes | None) -> None:
        """Handle one raw command; nothing a client sends can raise out of here."""
        try:
            command = codecs.load_command(value or b"")
        except ValidationError as exc:
            log.warning("rejected undecodable command: %s", exc.errors()[:3])
            self.publisher.status(None, "rejected", message=f"invalid command: {_first_error(exc)}")
            return
        if not self.commands.add(command.command_id):
            log.info("command %s already handled; ignored", command.command_id)
            return
        target = (
            command.experiment_id if isinstance(command, CreateCommand) else command.simulation_id
        )
        try:
            if isinstance(command, CreateCommand):
                self.create(command)
            else:
                self.lifecycle(command)
        except OrchestratorError as exc:
            self.publisher.status(
                None if isinstance(command, CreateCommand) else target,
                "rejected",
                command_id=command.command_id,
                message=str(exc),
            )
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the loop
            log.exception("command %s failed", command.command_id)
            self.publisher.status(
                None, "rejected", command_id=command.command_id, message=f"internal error: {exc}"
            )

    def create(self, command: CreateCommand) -> None:
        """Expand the experiment; queue every simulation."""
        runs = experiments.prepare(command, self.settings)
        for run in runs:
            plan = run.plan
            self.state[plan.simulation_id] = "queued"
            self.queue.append(plan.simulation_id)
            self.publisher.status(
                plan.simulation_id,
                "queued",
                command_id=command.command_id,
                experiment_id=command.experiment_id,
                name=plan.name,
                owner=command.issued_by,
                tags=plan.tags,
                total_epochs=run.spec.config.total_epochs,
                config=run.spec.config.model_dump(mode="json"),
                message="waiting for a free slot",
            )
        self.tick()

    def lifecycle(self, command: LifecycleCommand) -> None:
        """pause, resume, stop, delete or start one simulation."""
        sid = command.simulation_id
        state = self.state.get(sid)
        run_dir = experiments.known_run(self.settings, sid)
        if run_dir is None and command.type != "delete":
            raise OrchestratorError(f"simulation {sid} is not known to this orchestrator")
        action = getattr(self, f"_{command.type}")
        action(sid, state, command.command_id)

    def _pause(self, sid: uuid.UUID, state: str | None, cid: uuid.UUID) -> None:
        if state != "running":
            raise OrchestratorError(
                f"cannot pause a {state or 'unknown'} simulation; only running ones"
            )
        self.runtime.pause(self.handles[sid])
        self._set(sid, "paused", cid)

    def _resume(self, sid: uuid.UUID, state: str | None, cid: uuid.UUID) -> None:
        if state == "paused":
            self.runtime.unpause(self.handles[sid])
            self._set(sid, "running", cid)
        elif state in ("stopped", "failed", None):
            self._set(sid, "queued", cid, message="resuming from the last checkpoint")
            self.queue.append(sid)
            self.tick()
        else:
            raise OrchestratorError(f"cannot resume a {state} simulation")

    _start = _resume

    def _stop(self, sid: uuid.UUID, state: str | None, cid: uuid.UUID) -> None:
        if state == "queued":
            self.queue.remove(sid)
            self._set(sid, "stopped", cid, message="stopped before it started")
        elif state in ("running", "paused", "starting"):
            self.expected_exit.add(sid)
            self.runtime.stop(self.handles[sid])
            self.publisher.status(
                sid, "accepted", command_id=cid, message="stopping at the end of the batch"
            )
        else:
            raise OrchestratorError(f"cannot stop a {state or 'unknown'} simulation")

    def _delete(self, sid: uuid.UUID, state: str | None, cid: uuid.UUID) -> None:
        if sid in self.queue:
            self.queue.remove(sid)
        self.expected_exit.add(sid)
        handle = self.handles.pop(sid, None)
        run_dir = experiments.known_run(self.settings, sid)
        if handle is None and run_dir is not None:
            handle = Handle(sid, run_dir)
        if handle is not None:
            self.runtime.remove(handle)
        self._set(sid, "deleted", cid)
        self.state.pop(sid, None)

    def _set(
        self, sid: uuid.UUID, status: str, cid: uuid.UUID | None = None, message: str = ""
    ) -> None:
        self.state[sid] = status
        self.publisher.status(sid, status, command_id=cid, message=message)

    def tick(self) -> None:
        """Notice ended runs and start queued ones while slots are free."""
        for sid, handle in list(self.handles.items()):
            code = self.runtime.exit_code(handle)
            if code is None:
                continue
            del self.handles[sid]
            self._ended(sid, code)
        while self.queue and len(self.handles) < self.settings.nnt_max_runs:
            sid = self.queue.popleft()
            run_dir = self.settings.runs_dir / str(sid)
            self._set(sid, "starting")
            self.handles[sid] = self.runtime.start(sid, run_dir)
            self.state[sid] = "running"

    def _ended(self, sid: uuid.UUID, code: int) -> None:
        expected = sid in self.expected_exit
        self.expected_exit.discard(sid)
        if code == 0:
            self.state[sid] = "stopped" if expected else "finished"
        elif code == 1:
            self.state[sid] = "failed"  # the trainer reported its own error
        else:
            self.state[sid] = "failed"
            log_path = self.settings.runs_dir / str(sid) / "trainer.log"
            self.publisher.status(
                sid, "failed", message=f"trainer exited with code {code}; log: {log_path}"
            )

    def shutdown(self, timeout: float = 20.0) -> None:
        """Stop every run (each checkpoints) so nothing outlives the orchestrator."""
        for sid, handle in list(self.handles.items()):
            self.expected_exit.add(sid)
            self.runtime.stop(handle)
        for handle in list(self.handles.values()):
            if handle.proc is not None:
                try:
                    handle.proc.wait(timeout)
                except Exception:  # noqa: BLE001
                    self.runtime.remove(handle)
        self.publisher.flush()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    loc = ".".join(str(p) for p in err.get("loc", ())) or "message"
    return f"{loc}: {err.get('msg')}"


def run(settings: OrchestratorSettings, runtime: Runtime) -> None:
    """Consume commands until SIGTERM/SIGINT; commit each offset after it is handled."""
    publisher = StatusPublisher(settings.nnt_kafka_bootstrap)
    orch = Orchestrator(settings, runtime, publisher)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.nnt_kafka_bootstrap,
            "group.id": settings.nnt_orchestrator_group,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topics.COMMANDS])
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    log.info(
        "orchestrator ready (group %s, runtime %s)",
        settings.nnt_orchestrator_group,
        settings.nnt_runtime,
    )
    try:
        while not stopping.is_set():
            msg = consumer.poll(0.5)
            if msg is not None and msg.error():
                if msg.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("consumer error: %s", msg.error())
            elif msg is not None:
                orch.handle_message(msg.value())
                consumer.commit(message=msg, asynchronous=False)
            orch.tick()
    finally:
        log.info("orchestrator stopping: checkpointing %d run(s)", len(orch.handles))
        orch.shutdown()
        consumer.close()
