"""The byte-shuffled tensor codec (`compression="zstd-shuffle"`): exact round trip, smaller."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from schemas import tensors

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_it_round_trips_shuffled_tensors_exactly_and_smaller(dtype: str) -> None:
    array = np.random.default_rng(0).normal(0, 0.05, (256, 400)).astype(np.float32)
    shuffled = tensors.encode_array(array, dtype, compression="zstd-shuffle")
    header = tensors.TensorHeader(
        simulation_id=uuid.uuid4(),
        epoch=1,
        layer_index=0,
        layer_name="d",
        kind="kernel",
        dtype=dtype,
        shape=[256, 400],
        compression="zstd-shuffle",
    )
    head, payload = tensors.unpack(tensors.pack(header, shuffled))
    decoded = tensors.decode_array(payload, head.dtype, head.shape, head.compression)
    assert decoded.tobytes() == array.astype(dtype).tobytes()
    assert len(shuffled) < len(tensors.encode_array(array, dtype))


def test_it_unshuffles_what_it_shuffles_and_refuses_bad_payloads() -> None:
    raw = bytes(range(12))
    assert tensors.unshuffle(tensors.shuffle(raw, 4), 4) == raw
    with pytest.raises(tensors.TensorCodecError):
        tensors.decode_array(b"not zstd", "float32", [2], "zstd-shuffle")
