"""Turn one tensor into `nnt.tensors` messages, and join such messages back (for readers)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from schemas.tensors import (
    TensorHeader,
    decode_array,
    encode_array,
    join_chunks,
    pack,
    split,
    unpack,
)

TensorKey = tuple[int, int, str, str]  # epoch, layer index, kind, variable


def tensor_messages(header: TensorHeader, array: np.ndarray | None) -> list[bytes]:
    """Statistics alone when `array` is None, else the encoded tensor cut into chunks."""
    if array is None:
        return [pack(header.model_copy(update={"chunk": 0, "chunks": 0}), b"")]
    parts = split(encode_array(array, header.dtype))
    head = header.model_copy(update={"shape": [int(d) for d in np.shape(array)]})
    return [
        pack(
            head.model_copy(
                update={
                    "chunk": i,
                    "chunks": len(parts),
                    "stats": head.stats if i == 0 else None,
                }
            ),
            part,
        )
        for i, part in enumerate(parts)
    ]


def join_tensors(messages: list[bytes]) -> dict[TensorKey, np.ndarray]:
    """Decode every complete tensor among `nnt.tensors` messages (chunks in any order)."""
    parts: dict[TensorKey, dict[int, bytes]] = defaultdict(dict)
    heads: dict[TensorKey, TensorHeader] = {}
    for message in messages:
        header, payload = unpack(message)
        if header.chunks == 0:
            continue
        key: TensorKey = (header.epoch, header.layer_index, str(header.kind), header.variable)
        parts[key][header.chunk] = payload
        heads[key] = header
    out: dict[TensorKey, np.ndarray] = {}
    for done, chunks in parts.items():
        head = heads[done]
        data = join_chunks(chunks.items(), head.chunks)
        if data is not None:
            out[done] = decode_array(data, head.dtype, head.shape, head.compression)
    return out


def tensor_headers(messages: list[bytes]) -> list[TensorHeader]:
    """Headers of the messages that carry statistics (chunk 0 or stats-only)."""
    heads = [unpack(m)[0] for m in messages]
    return [h for h in heads if h.stats is not None]
