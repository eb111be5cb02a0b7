"""Metrics of one logged epoch on `nnt.epochs`, and their compact binary form.

The trainer sends epoch events in the binary form (`encode`): the stream workers parse it
with `struct` instead of validating JSON, about a tenth of the work per event. Any client
may still send JSON (`codecs.dumps`); `decode` reads both, told apart by the first byte.
"""

from __future__ import annotations

import math
import struct
import uuid
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from schemas.common import Epoch, Event, built, utcnow
from schemas.diagnosis import Diagnosis, Evidence


class BatchPoint(Event):
    """One batch-level point inside an epoch (optional, for fine-grained loss curves)."""

    step: int = Field(ge=0)
    metrics: dict[str, float]


class EpochEvent(Event):
    """All Keras logs of one epoch plus learning rate and throughput."""

    simulation_id: uuid.UUID
    epoch: Epoch
    total_epochs: int = Field(ge=0)
    metrics: dict[str, float | None]
    learning_rate: float | None = None
    epoch_time_s: float | None = None
    samples_per_s: float | None = None
    at: datetime = Field(default_factory=utcnow)
    batches: list[BatchPoint] = Field(default_factory=list)
    evidence: Evidence | None = Field(
        default=None, description="per-layer and loss-curve evidence (schemas/diagnosis.py)"
    )
    diagnoses: list[Diagnosis] | None = Field(
        default=None,
        description="the problems present at this epoch; [] healthy, null not diagnosed",
    )

    _points: dict[str, float] | None = PrivateAttr(default=None)

    @field_validator("metrics")
    @classmethod
    def _finite_or_none(cls, value: dict[str, float | None]) -> dict[str, float | None]:
        """JSON has no NaN/inf: carry them as null so any client can read the event."""
        return {k: (v if v is None or math.isfinite(v) else None) for k, v in value.items()}

    def points(self) -> dict[str, float]:
        """Every numeric series of this epoch, learning rate and timings included (computed
        once: the stream workers ask for them several times per event; do not mutate)."""
        private = self.__pydantic_private__  # a plain slot: `self._points` goes through
        found = private.get("_points") if private else None  # pydantic's slow __getattr__
        if found is not None:
            return found
        out = {k: v for k, v in self.metrics.items() if v is not None}
        for name in ("learning_rate", "epoch_time_s", "samples_per_s"):
            value = getattr(self, name)
            if value is not None and math.isfinite(value):
                out[name] = value
        if private is not None:
            private["_points"] = out
        return out


# The binary form: MAGIC, then _HEAD (simulation id, epoch, total epochs, `at` in microseconds
# since 1970 UTC, learning rate, epoch time, samples/s with NaN for none, the metric count and
# the byte length of their names), the metric names in UTF-8 separated by NUL, their values
# as float64 (NaN for none: non-finite), and last the optional fields (batches, evidence,
# diagnoses) as one JSON object (u32 length; 0 for none). Little-endian throughout. MAGIC's
# first byte cannot start a JSON document; a metric name holding NUL is sent as JSON instead.
MAGIC = b"\xa5E1"
_HEAD = struct.Struct("<3s16siiqdddHI")
_TAIL = struct.Struct("<I")
_EPOCH0 = datetime(1970, 1, 1, tzinfo=UTC)
_NAN = float("nan")


class _Extras(BaseModel):
    """The optional fields of an epoch event, carried as JSON at the end of the binary form."""

    model_config = ConfigDict(extra="forbid")

    batches: list[BatchPoint] = Field(default_factory=list)
    evidence: Evidence | None = None
    diagnoses: list[Diagnosis] | None = None


def _f(value: float | None) -> float:
    return _NAN if value is None else value


def _opt(value: float) -> float | None:
    return value if math.isfinite(value) else None


def encode(event: EpochEvent) -> bytes:
    """The binary form of an epoch event (what the trainer sends); JSON for the rare event
    the binary form cannot carry (a metric name holding NUL)."""
    names = "\x00".join(event.metrics).encode()
    if names.count(b"\x00") != max(len(event.metrics) - 1, 0):
        return event.model_dump_json(exclude_none=True).encode()
    at = event.at if event.at.tzinfo is not None else event.at.replace(tzinfo=UTC)
    micros = (at - _EPOCH0) // timedelta(microseconds=1)
    count = len(event.metrics)
    extras = event.model_dump_json(include={"batches", "evidence", "diagnoses"}, exclude_none=True)
    tail = b"" if extras in ("{}", '{"batches":[]}') else extras.encode()
    return b"".join(
        (
            _HEAD.pack(
                MAGIC, event.simulation_id.bytes, event.epoch, event.total_epochs, micros,
                _f(event.learning_rate), _f(event.epoch_time_s), _f(event.samples_per_s),
                count, len(names),
            ),
            names,
            struct.pack(f"<{count}d", *map(_f, event.metrics.values())),
            _TAIL.pack(len(tail)),
            tail,
        )
    )  # fmt: skip


def decode(raw: bytes) -> EpochEvent:
    """An epoch event from its binary form or from JSON; ValueError (pydantic's
    ValidationError is one) when it is neither. A JSON event without `at` keeps `at` out of
    `model_fields_set`, so the worker can stamp it with the record's time."""
    if not raw.startswith(MAGIC):
        return EpochEvent.model_validate_json(raw)
    try:
        _, sid, epoch, total, micros, lr, took, speed, count, size = _HEAD.unpack_from(raw)
        offset = _HEAD.size + size
        names, values_of = _layout(raw[_HEAD.size : offset], count)
        values = values_of.unpack_from(raw, offset)
        offset += values_of.size
        (size,) = _TAIL.unpack_from(raw, offset)
        offset += 4
        if offset + size != len(raw):
            raise ValueError("its lengths do not match its content")
        at = _EPOCH0 + timedelta(microseconds=micros)
    except (struct.error, UnicodeDecodeError, OverflowError, ValueError) as exc:
        raise ValueError(f"not a binary epoch event: {exc}") from exc
    if epoch < 0 or total < 0:
        raise ValueError(f"epoch {epoch} and total_epochs {total} must be >= 0")
    metrics: dict[str, float | None] = dict(zip(names, values, strict=True))
    if not all(map(math.isfinite, values)):
        metrics = {k: _opt(v) for k, v in zip(names, values, strict=True)}
    fields: dict[str, object] = {
        "simulation_id": _uuid(sid),
        "epoch": epoch,
        "total_epochs": total,
        "metrics": metrics,
        "learning_rate": _opt(lr),
        "epoch_time_s": _opt(took),
        "samples_per_s": _opt(speed),
        "at": at,
        "batches": [],
        "evidence": None,
        "diagnoses": None,
    }
    if size:
        extras = _Extras.model_validate_json(raw[offset:])
        fields.update(batches=extras.batches, evidence=extras.evidence, diagnoses=extras.diagnoses)
    return built(EpochEvent, fields)


# Metric names as sent (NUL-separated UTF-8) -> the names and the struct of their values:
# a run sends the same names every epoch.
_LAYOUTS: dict[tuple[bytes, int], tuple[tuple[str, ...], struct.Struct]] = {}


def _layout(names: bytes, count: int) -> tuple[tuple[str, ...], struct.Struct]:
    """The metric names of a binary event and the struct of their `count` values (ValueError
    when the names are not `count` UTF-8 strings)."""
    found = _LAYOUTS.get((names, count))
    if found is None:
        split = tuple(names.decode().split("\x00")) if count else ()
        if len(split) != count:
            raise ValueError("its lengths do not match its content")
        if len(_LAYOUTS) >= 4096:
            _LAYOUTS.clear()
        found = _LAYOUTS[(names, count)] = (split, struct.Struct(f"<{count}d"))
    return found


_IDS: dict[bytes, uuid.UUID] = {}


def _uuid(raw: bytes) -> uuid.UUID:
    """uuid.UUID(bytes=raw), remembered: a batch holds many events of the same runs."""
    found = _IDS.get(raw)
    if found is None:
        if len(_IDS) >= 4096:
            _IDS.clear()
        found = _IDS[raw] = uuid.UUID(bytes=raw)
    return found
