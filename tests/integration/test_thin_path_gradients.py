"""Gradients through real Kafka: what a reader decodes from `nnt.tensors` is the true gradient.

The TrackerCallback publishes to a real broker; a plain consumer reads the topic back, and the
decoded statistics and tensors must equal a `tf.GradientTape` computation on the probe batch.
"""

from __future__ import annotations

import os
import uuid

import numpy as np
import pytest

from schemas import topics
from tests.integration.test_thin_path import digits_mlp
from tests.streamworker import Reader, run_key, until

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def test_it_publishes_the_gradient_tape_gradients_of_the_probe_batch(kafka_bootstrap: str) -> None:
    import tensorflow as tf

    from trainer.reporting import join_tensors, tensor_headers
    from trainer.sdk import CollectSpec, TrackerCallback

    model, x, y = digits_mlp(16, seed=11)
    probe = (x[:48], y[:48])
    collect = CollectSpec(weights=False, biases=False, activations=False)
    sid = uuid.uuid4()
    tracker = TrackerCallback(kafka_bootstrap, "gradients", simulation_id=sid,
                              run_key=run_key(sid), collect=collect, probe=probe)  # fmt: skip
    model.fit(x[:600], y[:600], epochs=2, batch_size=64, verbose=0, callbacks=[tracker])

    reader = Reader(kafka_bootstrap, topics.TENSORS, f"test-gradients-{uuid.uuid4()}")
    wanted = {(2, v.path) for v in model.trainable_variables}

    def complete() -> list[bytes] | None:
        values = reader.poll(str(tracker.simulation_id))
        decoded = {(e, var) for e, _, kind, var in join_tensors(values) if kind == "gradient"}
        return values if wanted <= decoded else None

    try:
        values = until(complete, 60)
    finally:
        reader.close()
    sent = join_tensors(values)
    heads = {(h.epoch, h.variable): h for h in tensor_headers(values)}
    assert {h.kind for h in heads.values()} == {"gradient"}

    with tf.GradientTape() as tape:
        loss = model.loss(probe[1], model(probe[0], training=False))
    grads = tape.gradient(loss, model.trainable_variables)
    for variable, grad in zip(model.trainable_variables, grads, strict=True):
        expected = np.asarray(grad)
        head = heads[(2, variable.path)]
        stats = head.stats
        assert head.layer_name == variable.path.split("/")[-2]
        assert stats.norm == pytest.approx(float(np.linalg.norm(expected)), rel=1e-5)
        assert stats.mean == pytest.approx(float(expected.mean()), rel=1e-4, abs=1e-9)
        assert stats.std == pytest.approx(float(expected.std()), rel=1e-4)
        assert stats.min == pytest.approx(float(expected.min()), rel=1e-6)
        assert stats.max == pytest.approx(float(expected.max()), rel=1e-6)
        assert sum(stats.hist_counts) == expected.size
        decoded = sent[(2, head.layer_index, "gradient", variable.path)]
        np.testing.assert_allclose(decoded, expected, rtol=1e-6, atol=1e-9)
        # The cosine with epoch 1's gradient, as decoded from the topic too.
        previous = sent[(1, head.layer_index, "gradient", variable.path)].ravel()
        cosine = np.dot(previous, expected.ravel()) / (
            np.linalg.norm(previous) * np.linalg.norm(expected)
        )
        assert stats.cosine_prev == pytest.approx(float(cosine), rel=1e-5)
