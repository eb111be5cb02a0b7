"""Run one training described by RUN_DIR/run.json, from start or checkpoint to a final status."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

import keras
import numpy as np
from pydantic import ValidationError

from schemas import topics
from schemas.kafkaauth import KafkaSecurityError
from schemas.run import RUN_SPEC_FILE, RunSpec
from schemas.status import EARLY_STOP_FILE, EarlyStop, Status, StatusEvent
from trainer import checkpoints
from trainer.callback import TrackerCallback
from trainer.earlystop import EarlyStopper, message
from trainer.errors import SpecError
from trainer.failure import summarise
from trainer.preparation import Prepared, prepare, probe_batch
from trainer.publisher import KafkaPublisher, Publisher, send_event
from trainer.settings import TrainerSettings, load_settings

log = logging.getLogger(__name__)
# How long a checkpoint waits for the broker to acknowledge its epoch's events: a little over
# librdkafka's default message.timeout.ms (300 s), after which undelivered events fail anyway,
# so a broker restart only pauses training at the next epoch boundary.
DELIVERY_WAIT_S = 310.0


class Stopper(keras.callbacks.Callback):
    """Turns SIGTERM into a stop after the current batch, then rewinds to the epoch boundary."""

    def __init__(self, rewind: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.requested = False
        self.rewind = rewind

    def install(self) -> Any:
        """Catch SIGTERM from now on; returns the handler it replaced."""
        return signal.signal(signal.SIGTERM, self.request)

    def request(self, signum: int = signal.SIGTERM, frame: FrameType | None = None) -> None:
        """Ask training to stop at the next batch boundary."""
        log.info("stop requested (signal %s); finishing the current batch", signum)
        self.requested = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Stop here if asked to."""
        if self.requested:
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """A request that came during validation stops before the next epoch starts."""
        self.on_train_batch_end(0)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """A request that came between epochs stops after the next epoch's first batch."""
        self.on_train_batch_end(0)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Before the tracker reports the last epoch, drop the interrupted epoch's updates.

        Runs first among the callbacks, so what is published and what a resume starts from
        are both the state after the last complete epoch.
        """
        if self.requested and self.rewind is not None:
            self.rewind()


class Checkpointer(keras.callbacks.Callback):
    """Saves a checkpoint after every complete epoch (published or not)."""

    def __init__(self, run_dir: Path, tracker: TrackerCallback) -> None:
        super().__init__()
        self.run_dir, self.tracker = run_dir, tracker

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Checkpoint an epoch that ran to its end; an interrupted one is never saved.

        A published epoch is checkpointed only once the broker has acknowledged its events:
        a trainer killed in between (SIGKILL, OOM, host crash) resumes from the checkpoint
        before it and publishes the epoch again, instead of resuming after an epoch whose
        events died in the producer's queue and never reached the database.
        """
        if self.tracker.completed != epoch + 1:
            return
        if self.tracker.logged == epoch + 1:
            left = self.tracker.publisher.flush(DELIVERY_WAIT_S)
            if left:
                log.error(
                    "simulation %s: %d events of epoch %d not acknowledged by Kafka within "
                    "%.0f s; checkpointing anyway",
                    self.tracker.simulation_id,
                    left,
                    epoch + 1,
                    DELIVERY_WAIT_S,
                )
        final = epoch + 1 >= self.tracker.total_epochs
        checkpoints.save(self.run_dir, self.model, epoch + 1, final=final)


def read_spec(run_dir: Path) -> RunSpec:
    """The run specification, or a SpecError naming what is wrong."""
    path = run_dir / RUN_SPEC_FILE
    try:
        return RunSpec.model_validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise SpecError(
            f"{path}: not found; the orchestrator writes it before starting a run"
        ) from exc
    except ValidationError as exc:
        raise SpecError(f"{path}: invalid run specification: {exc}") from exc


class Progress(keras.callbacks.Callback):
    """Where training is, for a failure's message: the epoch running, and validation."""

    def __init__(self) -> None:
        super().__init__()
        self.epoch, self.validating = 0, False

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """An epoch (1-based) starts with its training batches."""
        self.epoch, self.validating = epoch + 1, False

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Keras runs the validation data through these callbacks too."""
        self.validating = True

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Back from the validation data."""
        self.validating = False

    def where(self) -> str:
        """Where training is: `epoch 3`, `epoch 3 (validation)` or `before the first epoch`."""
        if not self.epoch:
            return "before the first epoch"
        return f"epoch {self.epoch}" + (" (validation)" if self.validating else "")


class Run:
    """One training run: publishes running, epochs and tensors, then a terminal status."""

    def __init__(
        self,
        spec: RunSpec,
        run_dir: Path,
        publisher: Publisher,
        settings: TrainerSettings | None = None,
        callbacks: list[keras.callbacks.Callback] | None = None,
    ) -> None:
        self.spec, self.run_dir, self.publisher = spec, run_dir, publisher
        self.settings = settings or load_settings()
        self.callbacks = list(callbacks or [])
        self.stopper = Stopper(rewind=self._rewind)
        self.tracker: TrackerCallback | None = None
        self.early: EarlyStopper | None = None
        self.model: keras.Model | None = None
        self.progress = Progress()
        self.stage = "before training"  # then "training", then "test evaluation"

    def status(
        self,
        status: Status,
        epoch: int,
        message: str = "",
        metrics: dict[str, float] | None = None,
        detail: str | None = None,
        early_stop: EarlyStop | None = None,
    ) -> StatusEvent:
        """Publish one status event of this run; returns it."""
        spec = self.spec
        event = StatusEvent(
            simulation_id=spec.simulation_id,
            status=status,
            epoch=epoch,
            total_epochs=spec.config.total_epochs,
            message=message,
            experiment_id=spec.experiment_id,
            name=spec.name,
            owner=spec.owner,
            owner_id=spec.owner_id,
            tags=spec.plan.tags,
            metrics=metrics,
            detail=detail,
            early_stop=early_stop,
            source="trainer",
        )
        send_event(self.publisher, topics.STATUS, spec.simulation_id, event)
        return event

    def execute(self) -> int:
        """Train to the end; 0 when finished or stopped on request, 1 on failure."""
        previous = self.stopper.install()
        # A resumed early-stopped run trains on: its old stop must not describe this one.
        (self.run_dir / EARLY_STOP_FILE).unlink(missing_ok=True)
        self.status("running", checkpoints.latest_epoch(self.run_dir))
        try:
            return self._train()
        except Exception as exc:
            # Before the tracker exists (a resumed run failing in preparation), the last good
            # epoch is the checkpoint's, not 0.
            last = (
                self.tracker.completed if self.tracker else checkpoints.latest_epoch(self.run_dir)
            )
            log.exception("simulation %s failed after epoch %d", self.spec.simulation_id, last)
            line, detail = summarise(exc, self._where(), self._layer_names())
            self.status("failed", last, line, detail=detail)
            return 1
        finally:
            signal.signal(signal.SIGTERM, previous)
            self.publisher.flush()

    def _where(self) -> str:
        return self.progress.where() if self.stage == "training" else self.stage

    def _layer_names(self) -> list[str]:
        return [layer.name for layer in self.model.layers] if self.model is not None else []

    def _train(self) -> int:
        spec, config = self.spec, self.spec.config
        if spec.plan.simulation_id != spec.simulation_id:
            # The seed credited every K-fold run to the last fold's id; never mix ids.
            raise SpecError(
                f"plan.simulation_id {spec.plan.simulation_id} differs from "
                f"simulation_id {spec.simulation_id}; regenerate run.json"
            )
        keras.utils.set_random_seed(spec.seed)
        prepared = prepare(spec, self.settings)
        self._write_mappings(prepared)
        self.model = prepared.model
        done = checkpoints.restore(self.run_dir, prepared.model)
        self.tracker = self._tracker(prepared, done)
        if done < config.total_epochs and not self.stopper.requested:
            self.stage = "training"
            self._fit(prepared, done)
        note = self.early.note(config.total_epochs) if self.early else None
        if note is not None and self.tracker.completed < config.total_epochs:
            self._stop_early(prepared, note)
            return 0
        if self.stopper.requested and self.tracker.completed < config.total_epochs:
            # The checkpoint of the last complete epoch is already on disk (Checkpointer).
            self.status(
                "stopped",
                self.tracker.completed,
                f"stopped on request after epoch {self.tracker.completed}; resumes at epoch "
                f"{self.tracker.completed + 1} from its first batch",
            )
            return 0
        self.stage = "test evaluation"
        metrics = self._evaluate(prepared)
        message = (
            "test: " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items())
            if metrics
            else "finished; no test set"
        )
        self.status("finished", config.total_epochs, message, metrics or None)
        return 0

    def _tracker(self, prepared: Prepared, done: int) -> TrackerCallback:
        spec, config = self.spec, self.spec.config
        tracker = TrackerCallback(
            simulation_id=spec.simulation_id,
            simulation_name=spec.name,
            owner=spec.owner,
            tags=spec.plan.tags,
            epoch_period=config.epoch_period,
            collect=config.collect,
            publisher=self.publisher,
            total_epochs=config.total_epochs,
            probe=probe_batch(prepared.train, config.collect.probe_size, spec.seed),
            train_samples=len(prepared.train.x),
            batch_size=config.batch_size,
            experiment_id=spec.experiment_id,
            announce=False,
        )
        tracker.completed = tracker.logged = done
        return tracker

    def _fit(self, prepared: Prepared, done: int) -> None:
        assert self.tracker is not None
        val = prepared.val
        early = self.spec.config.early_stop
        self.early = EarlyStopper(self.tracker, early) if early.enabled else None
        prepared.model.fit(
            prepared.train.x,
            prepared.train.y,
            batch_size=self.spec.config.batch_size,
            epochs=self.spec.config.total_epochs,
            initial_epoch=done,
            verbose=0,
            validation_data=(val.x, val.y) if val is not None else None,
            callbacks=[
                self.stopper,
                self.progress,
                self.tracker,
                *([self.early] if self.early else []),  # reads what the tracker just found
                Checkpointer(self.run_dir, self.tracker),
                *self.callbacks,
            ],
        )

    def _stop_early(self, prepared: Prepared, note: EarlyStop) -> None:
        """End the run `stopped` with its diagnosis; its data and checkpoints stay.

        The test set is still evaluated when the weights are finite (cheap, and it says how
        bad the run got); a diverged network's NaN weights would only give NaN metrics.
        """
        self.stage = "test evaluation"
        metrics = self._stopped_metrics(prepared) if finite(self.model) else {}
        event = self.status("stopped", note.epoch, message(note), metrics or None, early_stop=note)
        # The orchestrator reads it when the trainer exits, and keeps this stop's message.
        tmp = self.run_dir / f".{EARLY_STOP_FILE}.tmp"
        tmp.write_text(event.model_dump_json())
        tmp.replace(self.run_dir / EARLY_STOP_FILE)
        log.info("simulation %s: %s", self.spec.simulation_id, event.message)

    def _stopped_metrics(self, prepared: Prepared) -> dict[str, float]:
        """Test metrics of a stopped run; {} when they cannot be had (the stop still holds)."""
        try:
            metrics = self._evaluate(prepared)
        except Exception:  # noqa: BLE001 - a stopped run must not turn into a failed one
            log.warning(
                "simulation %s: test evaluation of the early-stopped run failed",
                self.spec.simulation_id,
                exc_info=True,
            )
            return {}
        return {k: v for k, v in metrics.items() if np.isfinite(v)}

    def _rewind(self) -> None:
        """Back to the last epoch-boundary checkpoint: a stopped epoch's batches are dropped."""
        total = self.spec.config.total_epochs
        if self.model is None or self.tracker is None or self.tracker.completed >= total:
            return
        restored = checkpoints.restore(self.run_dir, self.model)
        log.info(
            "simulation %s: stopped mid-epoch %d; its batches are dropped, a resume starts "
            "from the checkpoint after epoch %d",
            self.spec.simulation_id,
            self.tracker.completed + 1,
            restored,
        )

    def _evaluate(self, prepared: Prepared) -> dict[str, float]:
        """Final test metrics, or {} without a test set."""
        if prepared.test is None:
            return {}
        result = prepared.model.evaluate(
            prepared.test.x,
            prepared.test.y,
            verbose=0,
            batch_size=self.spec.config.batch_size,
            return_dict=True,
        )
        return {k: float(v) for k, v in result.items()}

    def _write_mappings(self, prepared: Prepared) -> None:
        mappings = prepared.train.mappings
        if mappings:
            (self.run_dir / "label_mappings.json").write_text(json.dumps(mappings, indent=2))
            log.info("simulation %s: nominal codes %s", self.spec.simulation_id, mappings)


def finite(model: keras.Model | None) -> bool:
    """Whether every weight of the model is a finite number."""
    return model is not None and all(np.isfinite(w).all() for w in model.get_weights())


def run(run_dir: Path, publisher: Publisher | None = None) -> int:
    """Entry of `python -m trainer RUN_DIR`; the process exit code."""
    # Keras cuts its own frames from tracebacks; with them the failure names the layer,
    # loss or metric that raised (trainer.failure), and the full traceback goes in `detail`.
    keras.config.disable_traceback_filtering()
    try:
        spec = read_spec(run_dir)
        publisher = publisher or KafkaPublisher(spec.kafka_bootstrap)
    except (SpecError, KafkaSecurityError) as exc:
        log.error("%s", exc)
        return 1
    return Run(spec, run_dir, publisher).execute()
