"""Bytes per stored tensor value, measured on the database, against the seed's 6.7.

A ~100k-parameter MLP (784-128-10: 101,770 weights and biases) logs 20 epochs: kernels,
biases and their gradients in full, activations as statistics only, built by the trainer's
own message code and written by the worker's own row and sink code (no Kafka needed: the
bytes stored are the same). The figure is the growth of pg_total_relation_size over the
nnt_tensor partitions (heap, TOAST and indexes) divided by the values stored in full.
`python -m bench.storage` prints one JSON line.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from bench.ingest import database
from schemas.tensors import Compression, DType, TensorHeader, encode_array, pack, split, unpack
from store.sink import Sink
from stream_processors import downsample, rows
from trainer import stats
from trainer.reporting import tensor_messages

SEED_BYTES_PER_VALUE = 6.7  # the seed design's figure, quoted by issue 4
LAYERS = ((784, 128), (128, 10))
EPOCHS = 20

SIZE_SQL = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c
WHERE c.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = 'nnt_tensor'::regclass)
   OR c.oid = 'nnt_tensor'::regclass
"""


def training(seed: int = 0) -> list[tuple[int, int, str, str, np.ndarray | None, np.ndarray]]:
    """(epoch, layer, kind, variable, array or None for stats only, stats source) per tensor."""
    rng = np.random.default_rng(seed)
    weights = {}
    for i, (n_in, n_out) in enumerate(LAYERS):
        limit = np.sqrt(6 / (n_in + n_out))
        weights[(i, "kernel")] = rng.uniform(-limit, limit, (n_in, n_out)).astype(np.float32)
        weights[(i, "bias")] = np.zeros(n_out, np.float32)
    out = []
    for epoch in range(1, EPOCHS + 1):
        for (layer, kind), value in weights.items():
            grad = rng.normal(0, 1e-3, value.shape).astype(np.float32)
            value -= 0.5 * grad + rng.normal(0, 1e-3, value.shape).astype(np.float32)
            out.append((epoch, layer, kind, f"dense_{layer}/{kind}", value.copy(), value))
            out.append((epoch, layer, "gradient", f"dense_{layer}/{kind}", grad, grad))
        for layer, (_, n_out) in enumerate(LAYERS):
            act = rng.normal(0, 1, (64, n_out)).astype(np.float32)
            out.append((epoch, layer, "activation", f"dense_{layer}/output", None, act))
    return out


def messages(sid: uuid.UUID, dtype: DType, compression: Compression) -> tuple[list[bytes], int]:
    """The trainer's nnt.tensors messages of the whole run, and the values sent in full."""
    at, out, values = datetime.now(UTC), [], 0
    for epoch, layer, kind, variable, array, source in training():
        header = TensorHeader(
            simulation_id=sid,
            epoch=epoch,
            layer_index=layer,
            layer_name=f"dense_{layer}",
            kind=kind,
            variable=variable,
            dtype=dtype,
            compression=compression,
            stats=stats.tensor_stats(source),
            at=at + timedelta(seconds=epoch),
        )
        if array is not None and compression != "zstd":
            parts = split(encode_array(array, dtype, compression=compression))
            head = header.model_copy(update={"shape": list(array.shape), "chunks": len(parts)})
            out += [
                pack(
                    head.model_copy(update={"chunk": i, "stats": head.stats if i == 0 else None}), p
                )
                for i, p in enumerate(parts)
            ]
        else:
            out += tensor_messages(header, array)
        values += 0 if array is None else array.size
    return out, values


async def store(url: str, batch: list[bytes]) -> None:
    """Write the messages as the tensors agent does (full-tensor period 1)."""
    sink = Sink(url)
    chunks = [unpack(m) for m in batch]
    kept = downsample.thin_at_sink(chunks, 1)
    await sink.run(
        lambda conn: sink.copy(conn, rows.TENSOR, [rows.tensor_row(h, p, r) for h, p, r in kept])
    )
    await sink.close()


def measure(url: str, dtype: DType, compression: Compression) -> float:
    """Bytes per stored value of one mode."""
    sid = uuid.uuid4()
    batch, values = messages(sid, dtype, compression)
    with psycopg.connect(url, autocommit=True) as conn:
        before = conn.execute(SIZE_SQL).fetchone()[0]  # type: ignore[index]
        asyncio.run(store(url, batch))
        conn.execute("ANALYZE nnt_tensor")
        after = conn.execute(SIZE_SQL).fetchone()[0]  # type: ignore[index]
    return int(after - before) / values


def run() -> dict[str, Any]:
    """Measure float32 and float16, with the trainer's codec (zstd) and with byte shuffle."""
    with database() as url:
        result: dict[str, Any] = {
            "bench": "storage",
            "parameters": sum(i * o + o for i, o in LAYERS),
            "epochs": EPOCHS,
            "seed_bytes_per_value": SEED_BYTES_PER_VALUE,
        }
        for dtype in ("float32", "float16"):
            for compression in ("zstd", "zstd-shuffle"):
                figure = round(measure(url, dtype, compression), 3)
                suffix = "" if compression == "zstd" else "_shuffled"
                result[f"{dtype}{suffix}_bytes_per_value"] = figure
        result["float32_vs_seed_ratio"] = round(
            result["float32_bytes_per_value"] / SEED_BYTES_PER_VALUE, 3
        )
        result["float16_vs_seed_ratio"] = round(
            result["float16_bytes_per_value"] / SEED_BYTES_PER_VALUE, 3
        )
    return result


if __name__ == "__main__":
    print(json.dumps(run()))
