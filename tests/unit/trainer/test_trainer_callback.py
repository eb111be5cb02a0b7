"""TrackerCallback with an in-memory publisher: what reaches the topics, byte for byte."""

from __future__ import annotations

import json
import uuid
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from schemas import epochs, topics
from schemas.epochs import EpochEvent
from schemas.epochs import decode as decode_epoch
from schemas.experiment import CollectSpec
from schemas.status import StatusEvent
from tests.unit.trainer.tiny import tiny_data, tiny_model
from trainer.callback import TrackerCallback
from trainer.errors import ConfigError
from trainer.publisher import MemoryPublisher
from trainer.reporting import join_tensors, tensor_headers

pytestmark = pytest.mark.unit


def fit(epochs: int = 3, period: int = 1, **kwargs):
    """Train the tiny model with a tracker; return (model, publisher, tracker)."""
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, epoch_period=period, probe=(x, y), **kwargs)
    model.fit(
        x, y, epochs=epochs, batch_size=16, validation_split=0.25, verbose=0, callbacks=[tracker]
    )
    return model, pub, tracker


def epochs_of(pub: MemoryPublisher) -> list[EpochEvent]:
    return [decode_epoch(v) for v in pub.on(topics.EPOCHS)]


def test_it_sends_weights_and_biases_of_every_layer_bit_for_bit() -> None:
    model, pub, _ = fit(epochs=2)
    tensors = join_tensors(pub.on(topics.TENSORS))
    sent = {(k[1], k[2]) for k in tensors if k[0] == 2 and k[2] in ("kernel", "bias")}
    assert sent == {(1, "kernel"), (1, "bias"), (2, "kernel"), (2, "bias")}
    for (epoch, index, kind, variable), array in tensors.items():
        if epoch == 2 and kind in ("kernel", "bias"):
            layer = model.layers[index]
            expected = dict(zip([w.path for w in layer.weights], layer.get_weights(), strict=True))
            assert array.dtype == np.float32
            assert array.tobytes() == expected[variable].tobytes()


def test_it_names_each_tensor_after_its_real_layer() -> None:
    model, pub, _ = fit(epochs=1)
    for header in tensor_headers(pub.on(topics.TENSORS)):
        assert header.layer_name == model.layers[header.layer_index].name
    names = {h.layer_name for h in tensor_headers(pub.on(topics.TENSORS)) if h.kind == "kernel"}
    assert names == {"hidden", "logits"}


def test_it_logs_every_epoch_period_and_the_last_epoch() -> None:
    _, pub, _ = fit(epochs=5, period=2)
    assert [e.epoch for e in epochs_of(pub)] == [2, 4, 5]
    statuses = [StatusEvent.model_validate_json(v) for v in pub.on(topics.STATUS)]
    assert [(s.status, s.epoch) for s in statuses] == [
        ("running", 0),
        ("running", 2),
        ("running", 4),
        ("running", 5),
        ("finished", 5),
    ]


def test_it_reports_keras_logs_learning_rate_and_timings() -> None:
    _, pub, _ = fit(epochs=1, batch_size=16)
    event = epochs_of(pub)[0]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(event.metrics)
    assert event.learning_rate == pytest.approx(0.01)
    assert event.epoch_time_s > 0 and event.samples_per_s > 0
    assert event.total_epochs == 1


def test_it_generates_its_own_id_and_announces_the_run() -> None:
    _, pub, tracker = fit(epochs=1, simulation_name="my run", owner="ana", tags=["sdk"])
    first = StatusEvent.model_validate_json(pub.on(topics.STATUS)[0])
    assert isinstance(tracker.simulation_id, uuid.UUID)
    assert (first.simulation_id, first.name, first.owner, first.tags, first.total_epochs) == (
        tracker.simulation_id,
        "my run",
        "ana",
        ["sdk"],
        1,
    )
    assert {key for _, key, _ in pub.messages} == {str(tracker.simulation_id).encode()}


def test_it_sends_statistics_only_between_full_tensor_periods() -> None:
    _, pub, _ = fit(epochs=3, collect=CollectSpec(full_tensor_period=2, activations=False))
    full = {(h.epoch, h.chunks > 0) for h in tensor_headers(pub.on(topics.TENSORS))}
    assert full == {(1, False), (2, True), (3, True)}  # the last epoch is always full


def test_it_encodes_float16_when_configured() -> None:
    model, pub, _ = fit(epochs=1, collect=CollectSpec(dtype="float16"))
    tensors = join_tensors(pub.on(topics.TENSORS))
    kernel = tensors[(1, 1, "kernel", model.layers[1].weights[0].path)]
    assert kernel.dtype == np.float16
    np.testing.assert_allclose(kernel, model.layers[1].get_weights()[0], rtol=1e-3, atol=1e-3)


def test_it_collects_only_the_named_layers_and_kinds() -> None:
    collect = CollectSpec(layers=["logits"], biases=False, gradients=False, activations=False)
    _, pub, _ = fit(epochs=1, collect=collect)
    kinds = {(h.layer_name, h.kind) for h in tensor_headers(pub.on(topics.TENSORS))}
    assert kinds == {("logits", "kernel")}


def test_it_gradient_statistics_equal_a_gradient_tape_computation() -> None:
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, probe=(x, y), collect=CollectSpec(probe_size=32))
    model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[tracker])
    loss = model.loss
    with tf.GradientTape() as tape:
        value = loss(y[:32], model(x[:32], training=False))
    grads = tape.gradient(value, model.trainable_variables)
    heads = {h.variable: h for h in tensor_headers(pub.on(topics.TENSORS)) if h.kind == "gradient"}
    sent = join_tensors(pub.on(topics.TENSORS))
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        expected = np.asarray(grad)
        stats = heads[variable.path].stats
        assert stats.norm == pytest.approx(float(np.linalg.norm(expected)), rel=1e-5)
        assert stats.mean == pytest.approx(float(expected.mean()), rel=1e-5, abs=1e-9)
        assert stats.max == pytest.approx(float(expected.max()), rel=1e-6)
        assert sum(stats.hist_counts) == expected.size
        index = heads[variable.path].layer_index
        np.testing.assert_allclose(sent[(1, index, "gradient", variable.path)], expected, rtol=1e-6)


def test_it_gives_the_cosine_with_the_previous_gradient() -> None:
    _, pub, _ = fit(epochs=2)
    grads = [h for h in tensor_headers(pub.on(topics.TENSORS)) if h.kind == "gradient"]
    assert all(h.stats.cosine_prev is None for h in grads if h.epoch == 1)
    assert all(-1 <= h.stats.cosine_prev <= 1 for h in grads if h.epoch == 2)


def test_it_reports_activation_statistics_of_every_layer() -> None:
    model, pub, _ = fit(epochs=1)
    acts = [h for h in tensor_headers(pub.on(topics.TENSORS)) if h.kind == "activation"]
    assert [h.layer_name for h in acts] == [layer.name for layer in model.layers]
    assert all(h.chunks == 0 and h.stats.hist_counts for h in acts)


def test_it_skips_an_interrupted_epoch() -> None:
    class StopMidEpoch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            if batch == 1 and self.model.history.epoch == [0]:
                self.model.stop_training = True

    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, probe=(x, y))
    model.fit(x, y, epochs=4, batch_size=16, verbose=0, callbacks=[tracker, StopMidEpoch()])
    assert [e.epoch for e in epochs_of(pub)] == [1]
    assert tracker.completed == 1


def test_it_sends_status_as_plain_json_and_epochs_in_their_binary_form() -> None:
    _, pub, _ = fit(epochs=1)
    for value in pub.on(topics.STATUS):
        assert isinstance(json.loads(value), dict)
    (epoch,) = pub.on(topics.EPOCHS)
    assert epoch.startswith(epochs.MAGIC), "schemas.epochs.encode: what the workers parse fastest"
    event = decode_epoch(epoch)
    assert event.epoch == 1 and "loss" in event.metrics and event.diagnoses is not None


def test_it_is_exported_for_users_scripts_with_kafka_by_default() -> None:
    from trainer.publisher import KafkaPublisher
    from trainer.sdk import CollectSpec as SdkCollect
    from trainer.sdk import TrackerCallback as SdkTracker

    sid = uuid.uuid4()
    tracker = SdkTracker(
        bootstrap="127.0.0.1:1",
        simulation_name="my run",
        simulation_id=sid,
        run_key="ab" * 32,
        tags=["a"],
        collect=SdkCollect(gradients=False),
    )
    assert isinstance(tracker.publisher, KafkaPublisher)
    assert tracker.publisher.run_key == "ab" * 32
    assert tracker.simulation_id == sid and tracker.tags == ["a"]


def test_it_refuses_unknown_layer_names_before_the_first_batch() -> None:
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    before = model.get_weights()
    tracker = TrackerCallback(publisher=pub, probe=(x, y), collect=CollectSpec(layers=["Hidden"]))
    with pytest.raises(ConfigError) as info:
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[tracker])
    assert str(info.value) == (
        "collect.layers: no layer named 'Hidden' in the model; use names among: flat, hidden, logits"
    )
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert pub.messages == []


def test_it_sends_metrics_and_no_tensors_for_a_metrics_only_collect() -> None:
    metrics_only = CollectSpec(weights=False, biases=False, gradients=False, activations=False)
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, collect=metrics_only)  # no probe: none is needed
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[tracker])
    assert [e.epoch for e in epochs_of(pub)] == [1, 2]
    assert {"loss", "accuracy"} <= set(epochs_of(pub)[-1].metrics)
    assert pub.on(topics.TENSORS) == []


def test_it_takes_the_probe_from_the_training_data_when_none_is_given() -> None:
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, collect=CollectSpec(probe_size=40))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        model.fit(x, y, epochs=1, batch_size=16, verbose=0, callbacks=[tracker])
    with tf.GradientTape() as tape:
        value = model.loss(y[:40], model(x[:40], training=False))
    grads = tape.gradient(value, model.trainable_variables)
    heads = tensor_headers(pub.on(topics.TENSORS))
    sent = {h.variable: h.stats for h in heads if h.kind == "gradient"}
    assert set(sent) == {v.path for v in model.trainable_variables}
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        assert sent[variable.path].norm == pytest.approx(float(np.linalg.norm(grad)), rel=1e-5)
    acts = [h for h in heads if h.kind == "activation"]
    assert [h.layer_name for h in acts] == ["flat", "hidden", "logits"]
    flat = next(h for h in acts if h.layer_name == "flat")
    assert flat.stats.mean == pytest.approx(float(x[:40].mean()), rel=1e-5)


def test_it_takes_the_probe_from_the_first_batch_of_a_dataset() -> None:
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub, collect=CollectSpec(weights=False, biases=False))
    dataset = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    model.fit(dataset, epochs=1, verbose=0, callbacks=[tracker])
    assert tracker.probe is not None
    np.testing.assert_array_equal(tracker.probe[0], x[:16])
    np.testing.assert_array_equal(tracker.probe[1], y[:16])
    assert {h.kind for h in tensor_headers(pub.on(topics.TENSORS))} == {"gradient", "activation"}


def test_it_warns_once_when_no_probe_can_be_taken_from_a_generator() -> None:
    model, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    tracker = TrackerCallback(publisher=pub)

    def batches():
        while True:
            for i in range(0, len(x), 16):
                yield x[i : i + 16], y[i : i + 16]

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            model.fit(batches(), steps_per_epoch=6, epochs=1, verbose=0, callbacks=[tracker])
    ours = [w for w in caught if "TrackerCallback" in str(w.message)]
    assert len(ours) == 1
    assert "gradients and activations are NOT sent" in str(ours[0].message)
    assert "probe=" in str(ours[0].message)
    assert {h.kind for h in tensor_headers(pub.on(topics.TENSORS))} == {"kernel", "bias"}


def test_each_epoch_event_carries_evidence_and_diagnoses_and_flags_the_named_layers() -> None:
    model, pub, tracker = fit(epochs=2)
    events = epochs_of(pub)
    assert [e.evidence.epoch for e in events] == [1, 2]  # type: ignore[union-attr]
    hidden = next(x for x in events[-1].evidence.layers if x.layer_name == "hidden")  # type: ignore[union-attr]
    assert hidden.activation == "relu" and hidden.dead_fraction is not None
    assert hidden.weight_growth is not None and hidden.update_ratio is not None
    assert events[-1].diagnoses == tracker.diagnoses
    assert events[-1].evidence.output["reference_loss"] > 0  # type: ignore[union-attr,operator]

    keras.utils.set_random_seed(0)
    dead, (x, y), pub = tiny_model(), tiny_data(), MemoryPublisher()
    dead.get_layer("hidden").bias.assign(np.full(8, -50.0, dtype=np.float32))
    dead_tracker = TrackerCallback(publisher=pub, probe=(x, y))
    dead.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[dead_tracker])
    (diagnosis,) = epochs_of(pub)[-1].diagnoses or []
    assert (diagnosis.problem, diagnosis.layers) == ("dead_network", ["hidden"])
    flagged = {
        (h.layer_name, h.kind)
        for h in tensor_headers(pub.on(topics.TENSORS))
        if h.epoch == 2 and h.stats and "dead_network" in h.stats.flags
    }
    assert flagged == {("hidden", "gradient"), ("hidden", "activation")}


def test_a_failure_to_diagnose_costs_only_the_diagnoses(monkeypatch: pytest.MonkeyPatch) -> None:
    from trainer.diagnosis import evidence

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("evidence broke")

    monkeypatch.setattr(evidence.EvidenceTracker, "evidence", broken)
    _, pub, tracker = fit(epochs=2)
    events = epochs_of(pub)
    assert [(e.epoch, e.evidence, e.diagnoses) for e in events] == [
        (1, None, None),
        (2, None, None),
    ]
    assert tracker.completed == 2 and pub.on(topics.TENSORS)


def test_diagnosing_can_be_switched_off() -> None:
    _, pub, tracker = fit(epochs=1, collect=CollectSpec(diagnose=False))
    assert tracker.watch is None and epochs_of(pub)[0].diagnoses is None


def watch_chosen(dead: bool) -> tuple[MemoryPublisher, TrackerCallback]:
    """Four layers, `collect.layers=["chosen"]`; that layer's ReLUs all dead if `dead`."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((4, 4)),
            keras.layers.Flatten(name="flat"),
            keras.layers.Dense(8, activation="relu", name="first"),
            keras.layers.Dense(8, activation="relu", name="chosen"),
            keras.layers.Dense(3, name="logits"),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    (x, y), pub = tiny_data(), MemoryPublisher()
    if dead:
        model.get_layer("chosen").bias.assign(np.full(8, -50.0, dtype=np.float32))
    tracker = TrackerCallback(publisher=pub, probe=(x, y), collect=CollectSpec(layers=["chosen"]))
    model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[tracker])
    return pub, tracker


def test_named_layers_limit_what_is_read_sent_and_diagnosed_and_keep_the_references() -> None:
    pub, _ = watch_chosen(dead=False)
    sent = {(h.layer_name, h.kind) for h in tensor_headers(pub.on(topics.TENSORS))}
    assert sent == {("chosen", k) for k in ("kernel", "bias", "gradient", "activation")}
    evidence = epochs_of(pub)[-1].evidence
    assert evidence is not None
    # "logits" is read, never sent: the last trainable layer is the gradient ratios' reference
    assert [x.layer_name for x in evidence.layers] == ["chosen", "logits"]
    assert evidence.layers[1].grad_ratio == 1.0 and evidence.layers[0].grad_ratio is not None
    assert evidence.layers[0].weight_growth is not None

    _, tracker = watch_chosen(dead=True)
    assert [(d.problem, d.layers) for d in tracker.diagnoses] == [("dead_network", ["chosen"])]
