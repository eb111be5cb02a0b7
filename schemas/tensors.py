"""Per-layer tensors on `nnt.tensors`: a compact binary codec, compressed and chunked.

Wire format of one message: b"NNT1" | uint32 header length | header JSON | payload.
The payload is one chunk of the zstd-compressed tensor bytes (little-endian float32 or
float16, C order); with `compression="zstd-shuffle"` the bytes are byte-shuffled first
(every value's first byte, then every second byte, ...), which groups the low-entropy
sign/exponent bytes and lets zstd shrink floats by a further 4-7 %. Chunk 0's header
carries the statistics and histogram; every chunk's header names the tensor, so chunks can
be stored as they arrive and joined when read (join_chunks).
"""

from __future__ import annotations

import json
import struct
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

import numpy as np
import zstandard
from pydantic import Field

from schemas.common import Epoch, Event, utcnow
from schemas.topics import TENSOR_CHUNK_BYTES

MAGIC = b"NNT1"
Kind = Literal["kernel", "bias", "weight", "gradient", "activation"]
DType = Literal["float32", "float16"]
Compression = Literal["zstd", "zstd-shuffle", "none"]


class TensorCodecError(ValueError):
    """A tensor message that cannot be decoded."""


class TensorStats(Event):
    """Summary statistics of one tensor; always sent, even when the full tensor is not."""

    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    norm: float | None = None
    zero_fraction: float | None = None
    nonfinite: int = 0
    cosine_prev: float | None = None
    hist_counts: list[int] = Field(default_factory=list)
    hist_edges: list[float] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)


class TensorHeader(Event):
    """Which tensor of which run a chunk belongs to."""

    simulation_id: uuid.UUID
    epoch: Epoch
    layer_index: int = Field(ge=0)
    layer_name: str
    kind: Kind
    variable: str = ""
    dtype: DType = "float32"
    shape: list[int] = Field(default_factory=list)
    chunk: int = Field(default=0, ge=0)
    chunks: int = Field(default=1, ge=0, description="0 when only statistics are sent")
    compression: Compression = "zstd"
    at: datetime = Field(default_factory=utcnow)
    stats: TensorStats | None = None


def pack(header: TensorHeader, payload: bytes) -> bytes:
    """Serialise one chunk."""
    head = header.model_dump_json(exclude_none=True).encode()
    return MAGIC + struct.pack("<I", len(head)) + head + payload


def unpack(message: bytes) -> tuple[TensorHeader, bytes]:
    """Parse one chunk; raises TensorCodecError on anything malformed."""
    if len(message) < 8 or message[:4] != MAGIC:
        raise TensorCodecError("not an NN Tracker tensor message (bad magic)")
    (size,) = struct.unpack("<I", message[4:8])
    if 8 + size > len(message):
        raise TensorCodecError("truncated tensor header")
    try:
        header = TensorHeader.model_validate(json.loads(message[8 : 8 + size]))
    except (ValueError, TypeError) as exc:
        raise TensorCodecError(f"bad tensor header: {exc}") from exc
    return header, message[8 + size :]


def shuffle(raw: bytes, itemsize: int) -> bytes:
    """Byte-shuffle `raw` (values of `itemsize` bytes): all first bytes, then all second..."""
    if itemsize == 1 or not raw:
        return raw
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, itemsize).T.tobytes()


def unshuffle(raw: bytes, itemsize: int) -> bytes:
    """Inverse of shuffle."""
    if itemsize == 1 or not raw:
        return raw
    if len(raw) % itemsize:
        raise TensorCodecError(
            f"shuffled payload of {len(raw)} bytes is not a multiple of {itemsize}"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(itemsize, -1).T.tobytes()


def encode_array(
    array: np.ndarray, dtype: DType = "float32", level: int = 3, compression: Compression = "zstd"
) -> bytes:
    """Compress a tensor's values in the chosen dtype (float32 is lossless)."""
    values = np.ascontiguousarray(array, dtype=np.dtype(dtype).newbyteorder("<"))
    if compression == "none":
        return values.tobytes()
    if compression == "zstd-shuffle":
        return zstandard.ZstdCompressor(level=level).compress(
            shuffle(values.tobytes(), np.dtype(dtype).itemsize)
        )
    # zstd reads the array's own buffer: no copy of a tensor of millions of values
    return zstandard.ZstdCompressor(level=level).compress(values.reshape(-1).view(np.uint8).data)


def decode_array(
    data: bytes, dtype: str, shape: list[int], compression: str = "zstd"
) -> np.ndarray:
    """Inverse of encode_array, given the joined chunks of one tensor."""
    itemsize = np.dtype(dtype).itemsize
    try:
        raw = zstandard.ZstdDecompressor().decompress(data) if compression != "none" else data
    except zstandard.ZstdError as exc:
        raise TensorCodecError(f"bad {compression} payload: {exc}") from exc
    if compression == "zstd-shuffle":
        raw = unshuffle(raw, itemsize)
    count = int(np.prod(shape)) if shape else 1
    if len(raw) != count * itemsize:
        raise TensorCodecError(f"payload holds {len(raw)} bytes, shape {shape} needs more or fewer")
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(shape)


def split(data: bytes, chunk_bytes: int = TENSOR_CHUNK_BYTES) -> list[bytes]:
    """Cut a compressed payload into chunks under the broker's message limit."""
    return [data[i : i + chunk_bytes] for i in range(0, len(data), chunk_bytes)] or [b""]


def join_chunks(parts: Iterable[tuple[int, bytes]], chunks: int) -> bytes | None:
    """Inverse of split: the payload of one tensor from its (chunk index, payload) parts in
    any order; None unless every chunk 0..chunks-1 is there (a repeated index is one replayed
    chunk: its last copy counts)."""
    by_index = dict(parts)
    if chunks < 1 or len(by_index) != chunks or any(i not in by_index for i in range(chunks)):
        return None
    return b"".join(by_index[i] for i in range(chunks))
