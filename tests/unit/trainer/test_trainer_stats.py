"""Tensor statistics, the non-finite flag and chunking, without Keras."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from schemas.tensors import TensorHeader, unpack
from schemas.topics import MAX_MESSAGE_BYTES
from trainer.reporting import join_tensors, tensor_messages
from trainer.stats import tensor_stats

pytestmark = pytest.mark.unit


def test_it_computes_the_statistics_of_a_tensor() -> None:
    stats = tensor_stats(np.array([[0.0, 3.0], [-4.0, 1.0]], dtype=np.float32))
    assert (stats.mean, stats.min, stats.max, stats.norm, stats.zero_fraction) == (
        0.0,
        -4.0,
        3.0,
        pytest.approx(np.sqrt(26)),
        0.25,
    )
    assert (
        len(stats.hist_counts) == 32 and sum(stats.hist_counts) == 4 and len(stats.hist_edges) == 33
    )


def test_it_counts_and_flags_non_finite_values() -> None:
    stats = tensor_stats(np.array([1.0, np.nan, np.inf, 2.0]))
    assert (stats.nonfinite, stats.max, stats.flags) == (2, 2.0, ["nonfinite"])


def test_it_gives_the_cosine_with_the_previous_tensor() -> None:
    assert tensor_stats(np.array([1.0, 0.0]), np.array([0.0, 2.0])).cosine_prev == 0.0
    assert tensor_stats(np.array([1.0, 1.0]), np.array([2.0, 2.0])).cosine_prev == pytest.approx(
        1.0
    )


def test_it_chunks_large_tensors_below_the_message_limit() -> None:
    array = np.random.default_rng(0).standard_normal((1024, 1500)).astype(np.float32)
    header = TensorHeader(
        simulation_id=uuid.uuid4(),
        epoch=1,
        layer_index=3,
        layer_name="big",
        kind="kernel",
        variable="big/kernel",
        stats=tensor_stats(array),
    )
    messages = tensor_messages(header, array)
    assert len(messages) > 1 and all(len(m) < MAX_MESSAGE_BYTES for m in messages)
    heads = [unpack(m)[0] for m in messages]
    assert [h.chunk for h in heads] == list(range(len(messages)))
    assert heads[0].stats is not None and all(h.stats is None for h in heads[1:])
    joined = join_tensors(list(reversed(messages)))
    assert joined[(1, 3, "kernel", "big/kernel")].tobytes() == array.tobytes()
