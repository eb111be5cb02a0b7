"""`TrackerCallback`: a Keras callback that publishes a run's internals every logged epoch."""

from __future__ import annotations

import logging
import time
import uuid
import warnings
from typing import Any

import keras
import numpy as np

from schemas import topics
from schemas.diagnosis import Diagnosis
from schemas.epochs import EpochEvent
from schemas.experiment import CollectSpec
from schemas.status import Status, StatusEvent
from schemas.tensors import Kind, TensorHeader, TensorStats
from trainer import probes, stats
from trainer.diagnosis.watch import Watch
from trainer.errors import ConfigError
from trainer.publisher import KafkaPublisher, Publisher, key_of, send_event
from trainer.reporting import tensor_messages
from trainer.settings import load_settings

log = logging.getLogger(__name__)


def kind_of(path: str) -> Kind:
    """Tensor kind of a variable path: kernel, bias, or weight for everything else."""
    leaf = path.rsplit("/", 1)[-1]
    if leaf.endswith("kernel"):
        return "kernel"
    return "bias" if leaf == "bias" else "weight"


def current_learning_rate(model: keras.Model) -> float | None:
    """The optimizer's learning rate now (a schedule evaluated at the current step)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    try:
        value = np.float32(keras.ops.convert_to_numpy(optimizer.learning_rate))
    except (TypeError, ValueError, AttributeError):
        return None
    return float(str(value))  # the shortest text of the float32 rate: 0.001, not 0.0010000000475


class TrackerCallback(keras.callbacks.Callback):
    """Publishes metrics, learning rate, weights, biases, gradients and activations to Kafka.

    Every `epoch_period` epochs and at the last epoch. Usable in any Keras script, with the
    `simulation_id` and `run_key` that `POST /api/sdk-runs` gave (trainer.sdk.register_run):
    the stream workers store only events signed with their run's key. It announces the run
    so its status shows in the UI. With a `publisher` (the platform's trainer, tests) the
    publisher signs, and a missing `simulation_id` is made up.
    """

    def __init__(
        self,
        bootstrap: str = "127.0.0.1:9092",
        simulation_name: str = "keras run",
        *,
        simulation_id: uuid.UUID | str | None = None,
        owner: str = "",
        tags: list[str] | None = None,
        epoch_period: int = 1,
        collect: CollectSpec | None = None,
        publisher: Publisher | None = None,
        probe: tuple[np.ndarray, np.ndarray] | None = None,
        total_epochs: int | None = None,
        train_samples: int | None = None,
        batch_size: int | None = None,
        experiment_id: uuid.UUID | None = None,
        config: dict[str, Any] | None = None,
        announce: bool = True,
        run_key: str | None = None,
    ) -> None:
        super().__init__()
        if epoch_period < 1:
            raise ValueError("epoch_period must be >= 1")
        if publisher is None:
            publisher = signing_publisher(bootstrap, simulation_id, run_key)
        self.simulation_id = uuid.UUID(str(simulation_id)) if simulation_id else uuid.uuid4()
        self.simulation_name, self.owner, self.tags = simulation_name, owner, list(tags or [])
        self.epoch_period = epoch_period
        self.collect = collect or CollectSpec()
        self.publisher: Publisher = publisher
        self.probe = _cut_probe(probe, self.collect.probe_size)
        self.total_epochs = total_epochs or 0
        self.train_samples, self.batch_size = train_samples, batch_size
        self.experiment_id, self.config, self.announce = experiment_id, config, announce
        self.completed = 0  # last epoch that ran to its end
        self.logged = 0  # last epoch published
        self._t0 = 0.0
        self._batches = 0
        self._last: tuple[dict[str, Any], float, int] = ({}, 0.0, 0)
        self._prev_grads: dict[str, np.ndarray] = {}
        self._probe_pass: probes.Probe | None = None
        self._watched: set[str] | None = None  # layers the diagnosis reads; None: all
        self._probe_broken = False
        self._probe_warned = False
        self._outbox: list[
            tuple[int, probes.Variable, Kind, np.ndarray | None, TensorStats, bool]
        ] = []
        # Evidence and diagnoses of every logged epoch (trainer.diagnosis); `diagnoses` holds
        # the problems active after the latest one (trainer.earlystop reads it).
        self.watch = Watch(total_epochs=self.total_epochs) if self.collect.diagnose else None
        self.diagnoses: list[Diagnosis] = []

    # Keras hooks -----------------------------------------------------------------------

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Check the layer names, find a probe batch, learn the epoch count, announce the run."""
        check_layers(self.model, self.collect.layers)
        self._watched = watched_layers(self.model, self.collect.layers)
        if self.probe is None and (self.collect.gradients or self.collect.activations):
            self._fallback_probe()
        self.total_epochs = self.total_epochs or int(self.params.get("epochs") or 0)
        if self.watch is not None:  # the weights before training: growth and updates start here
            for var in probes.owners(self.model, trainable_only=True):
                if kind_of(var.path) == "kernel" and self._watches(var.layer_name):
                    self.watch.initial(var.layer_name, keras.ops.convert_to_numpy(var.value))
        if self.announce:
            self.status("running", self.completed)

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Start the epoch's clock."""
        self._t0 = time.perf_counter()
        self._batches = 0

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        """Count batches, to tell a complete epoch from an interrupted one."""
        self._batches += 1

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Publish the epoch when it is a logged one; skip an interrupted epoch."""
        elapsed = time.perf_counter() - self._t0
        steps = self.params.get("steps")
        if steps and self._batches < steps:
            log.info(
                "simulation %s: epoch %d interrupted after %d of %d batches",
                self.simulation_id,
                epoch + 1,
                self._batches,
                steps,
            )
            return
        self.completed = epoch + 1
        self._last = (dict(logs or {}), elapsed, self._batches)
        if self.watch is not None:
            self.watch.epoch_end(_scalars(self._last[0]))
        if self.completed % self.epoch_period == 0 or self.completed >= self.total_epochs:
            self.report(self.completed, *self._last)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Publish the last completed epoch if it was not logged; flush."""
        if self.completed > self.logged:
            self.report(self.completed, *self._last)
        if self.announce:
            self.status("finished", self.completed)
        self.publisher.flush()

    def _fallback_probe(self) -> None:
        """No `probe=`: take the first training samples, or say once that none will be sent."""
        self.probe = probes.training_head(self.model, self.collect.probe_size)
        if self.probe is not None:
            log.info(
                "simulation %s: probe batch = the first %d training samples",
                self.simulation_id,
                len(self.probe[0]),
            )
        elif not self._probe_warned:
            self._probe_warned = True
            warnings.warn(
                "TrackerCallback: no probe= batch was given and none could be taken from the "
                "data passed to model.fit (a generator, or several inputs), so gradients and "
                "activations are NOT sent. Pass probe=(x[:64], y[:64]), or "
                "collect=CollectSpec(gradients=False, activations=False) to silence this.",
                UserWarning,
                stacklevel=2,
            )

    # Publishing ------------------------------------------------------------------------

    def status(self, status: Status, epoch: int, message: str = "") -> None:
        """Publish one status event describing this run."""
        event = StatusEvent(
            simulation_id=self.simulation_id,
            status=status,
            epoch=epoch,
            total_epochs=self.total_epochs,
            message=message,
            experiment_id=self.experiment_id,
            name=self.simulation_name,
            owner=self.owner,
            tags=self.tags,
            config=self.config,
            source="trainer",
        )
        send_event(self.publisher, topics.STATUS, self.simulation_id, event)

    def report(self, epoch: int, logs: dict[str, Any], elapsed: float, batches: int) -> None:
        """Publish the epoch's metrics and diagnoses, a progress status and the network's
        tensors (computed first: the diagnoses read them, and ride on the epoch event)."""
        rate = current_learning_rate(self.model)
        self.publish_tensors(epoch)
        evidence, diagnoses = None, None
        if self.watch is not None:
            evidence, diagnoses = self.watch.diagnose(
                self.model, epoch, rate, self.probe, self.total_epochs
            )
            self.diagnoses = diagnoses if diagnoses is not None else self.diagnoses
            self._flag_tensors(diagnoses or [])
        event = EpochEvent(
            simulation_id=self.simulation_id,
            epoch=epoch,
            total_epochs=self.total_epochs,
            metrics=_scalars(logs),
            learning_rate=rate,
            epoch_time_s=elapsed,
            samples_per_s=self._throughput(elapsed, batches),
            evidence=evidence,
            diagnoses=diagnoses,
        )
        send_event(self.publisher, topics.EPOCHS, self.simulation_id, event)
        self.status("running", epoch)
        log.info(
            "simulation %s: epoch %d/%d %s",
            self.simulation_id,
            epoch,
            self.total_epochs,
            " ".join(f"{k}={v:.4g}" for k, v in event.points().items()),
        )
        self._flush_tensors()
        self.logged = epoch

    def _throughput(self, elapsed: float, batches: int) -> float | None:
        if elapsed <= 0:
            return None
        if self.train_samples:
            return self.train_samples / elapsed
        return batches * self.batch_size / elapsed if self.batch_size else None

    def full_tensors(self, epoch: int) -> bool:
        """Whether this logged epoch carries whole tensors, not only their statistics."""
        if epoch >= self.total_epochs:
            return True
        return (epoch // self.epoch_period) % self.collect.full_tensor_period == 0

    def publish_tensors(self, epoch: int) -> None:
        """Weights and biases, then gradients and activations on the probe batch: computed
        now, queued, sent by `_flush_tensors` after the epoch event. Only the variables of
        the chosen layers (collect.layers) and of the layers the diagnosis reads are read."""
        full = self.full_tensors(epoch)
        for var in probes.owners(self.model, trainable_only=False):
            kind = kind_of(var.path)
            wanted = self.collect.biases if kind == "bias" else self.collect.weights
            wanted = wanted and self._wanted(var.layer_name)
            watched = kind == "kernel" and self._watches(var.layer_name)
            if not (wanted or watched):
                continue
            array = keras.ops.convert_to_numpy(var.value)
            if watched and self.watch is not None:
                self.watch.kernel(var.layer_index, var.layer_name, array)
            if wanted:
                self._send(epoch, var, kind, array, stats.tensor_stats(array), full)
        if self.probe is not None and not self._probe_broken:
            try:
                self._publish_probe(epoch, full)
            except Exception:  # a probe must never end a training run
                log.exception(
                    "simulation %s: probe failed; gradients and activations disabled",
                    self.simulation_id,
                )
                self._probe_broken = True

    def _publish_probe(self, epoch: int, full: bool) -> None:
        if not (self.collect.gradients or self.collect.activations):
            return
        x, y = self.probe  # type: ignore[misc]
        self._probe_pass = self._probe_pass or self._make_probe()
        grads, outputs = self._probe_pass(x, y)
        for var, grad in grads:
            if self.watch is not None and kind_of(var.path) == "kernel":
                self.watch.gradient(var.layer_name, grad)
            if self._wanted(var.layer_name):
                st = stats.tensor_stats(grad, self._prev_grads.get(var.path))
                self._prev_grads[var.path] = grad
                self._send(epoch, var, "gradient", grad, st, full)
        for index, name, act in outputs:
            if self.watch is not None and self._watches(name):
                self.watch.output(index, name, act)
            if self._wanted(name):
                var = probes.Variable(index, name, f"{name}/output", None)
                self._send(epoch, var, "activation", None, stats.tensor_stats(act), False)

    def _make_probe(self) -> probes.Probe:
        """The probe pass over the variables and layers that are sent or diagnosed; gradients
        alone for a model whose layer outputs cannot be extracted (a subclassed model)."""
        variables = [
            var
            for var in probes.owners(self.model, trainable_only=True)
            if self._wanted(var.layer_name)
            or (kind_of(var.path) == "kernel" and self._watches(var.layer_name))
        ]
        variables = variables if self.collect.gradients else []
        layers = [
            i
            for i, layer in enumerate(self.model.layers)
            if self._wanted(layer.name) or self._watches(layer.name)
        ]
        try:
            return probes.Probe(self.model, variables, layers if self.collect.activations else [])
        except (AttributeError, ValueError, TypeError):
            if not variables:
                raise
            log.exception("simulation %s: no activations from this model", self.simulation_id)
            return probes.Probe(self.model, variables, [])

    def _flag_tensors(self, diagnoses: list[Diagnosis]) -> None:
        """Mark the gradients and activations of the layers a diagnosis names with its
        problem, so the graphs show where it is."""
        named = {(layer, d.problem) for d in diagnoses for layer in d.layers}
        for _, var, kind, _, st, _ in self._outbox:
            if kind in ("gradient", "activation"):
                st.flags += [p for layer, p in sorted(named) if layer == var.layer_name]

    def _flush_tensors(self) -> None:
        """Send the tensors queued for this epoch."""
        outbox, self._outbox = self._outbox, []
        for message in outbox:
            self._publish(*message)

    def _wanted(self, layer_name: str) -> bool:
        return self.collect.layers is None or layer_name in self.collect.layers

    def _watches(self, layer_name: str) -> bool:
        """Whether the diagnosis reads this layer's arrays."""
        if self.watch is None:
            return False
        return self._watched is None or layer_name in self._watched

    def _send(
        self,
        epoch: int,
        var: probes.Variable,
        kind: Kind,
        array: np.ndarray | None,
        st: TensorStats,
        full: bool,
    ) -> None:
        self._outbox.append((epoch, var, kind, array, st, full))

    def _publish(
        self,
        epoch: int,
        var: probes.Variable,
        kind: Kind,
        array: np.ndarray | None,
        st: TensorStats,
        full: bool,
    ) -> None:
        header = TensorHeader(
            simulation_id=self.simulation_id,
            epoch=epoch,
            layer_index=var.layer_index,
            layer_name=var.layer_name,
            kind=kind,
            variable=var.path,
            dtype=self.collect.dtype,
            shape=list(np.shape(array)) if array is not None else [],
            stats=st,
        )
        key = key_of(self.simulation_id)
        for message in tensor_messages(header, array if full else None):
            self.publisher.send(topics.TENSORS, key, message)


NO_RUN_KEY = (
    "run_key: the stream workers store only events signed with their run's key; create the "
    "run with POST /api/sdk-runs (trainer.sdk.register_run) and pass its simulation_id and "
    "run_key, or set NNT_RUN_KEY (docs/sdk.md)"
)


def signing_publisher(
    bootstrap: str, simulation_id: uuid.UUID | str | None, run_key: str | None
) -> KafkaPublisher:
    """A Kafka publisher that signs with the run's key (`run_key`, else NNT_RUN_KEY); a
    missing key or simulation id raises ConfigError naming the fix."""
    key = run_key or load_settings().run_key
    if not key:
        raise ConfigError(NO_RUN_KEY)
    if not simulation_id:
        raise ConfigError(
            "simulation_id: a run key signs for one simulation; pass the simulation_id that "
            "came with it (POST /api/sdk-runs)"
        )
    return KafkaPublisher(bootstrap, run_key=key)


def check_layers(model: keras.Model, layers: list[str] | None) -> None:
    """Refuse `collect.layers` names the model does not have, listing the ones it has."""
    names = [layer.name for layer in model.layers]
    unknown = [name for name in layers or [] if name not in names]
    if unknown:
        raise ConfigError(
            f"collect.layers: no layer named {', '.join(map(repr, unknown))} in the model; "
            f"use names among: {', '.join(names)}"
        )


def watched_layers(model: keras.Model, layers: list[str] | None) -> set[str] | None:
    """The layers the diagnosis reads: all (None) by default; with `collect.layers`, those
    plus the last trainable layer with a kernel (the reference of the gradient ratios) and
    the last layer (its output range)."""
    if layers is None:
        return None
    with_kernel = [
        layer.name
        for layer in model.layers
        if any(kind_of(v.path) == "kernel" for v in layer.trainable_weights)
    ]
    return set(layers) | set(with_kernel[-1:]) | {model.layers[-1].name}


def _scalars(logs: dict[str, Any]) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for name, value in logs.items():
        try:
            out[name] = float(np.asarray(value))
        except (TypeError, ValueError):
            continue
    return out


def _cut_probe(
    probe: tuple[np.ndarray, np.ndarray] | None, size: int
) -> tuple[np.ndarray, np.ndarray] | None:
    if probe is None:
        return None
    x, y = probe
    return np.asarray(x)[:size], np.asarray(y)[:size]
