"""Pure row building: decoded events to the rows of the time-series tables (store.tables)."""

from __future__ import annotations

import struct
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from psycopg.types.json import Jsonb

from schemas.diagnosis import Diagnosis
from schemas.epochs import EpochEvent
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader
from store.diagnoses import clean
from store.sink import SinkError

# The tables are defined in store.tables; `rows.TENSOR` and the others stay importable here.
from store.tables import BATCH_METRIC as BATCH_METRIC
from store.tables import (
    COPY_SIGNATURE,
    COPY_TRAILER,
    Encoded,
    copy_text_field,
    copy_timestamptz_field,
)
from store.tables import EPOCH_METRIC as EPOCH_METRIC
from store.tables import EVIDENCE as EVIDENCE
from store.tables import RESOURCE as RESOURCE
from store.tables import STATUS_EVENT as STATUS_EVENT
from store.tables import TAG_AGGREGATE as TAG_AGGREGATE
from store.tables import TAG_AGGREGATE_KEY as TAG_AGGREGATE_KEY
from store.tables import TENSOR as TENSOR
from store.tables import Row as Row
from store.tables import Table as Table


def epoch_rows(events: Iterable[EpochEvent]) -> list[Row]:
    """One nnt_epoch_metric row per metric point of each epoch."""
    return [
        (e.simulation_id, e.epoch, metric, value, e.at)
        for e in events
        for metric, value in e.points().items()
    ]


# nnt_epoch_metric's binary COPY fields: (5 fields, uuid) + id, (int4) + epoch; a value.
_EPOCH_HEAD = struct.Struct(">hi16sii")
_VALUE = struct.Struct(">id")
# Metric name -> its COPY field, encoded once (a run logs the same few names every epoch).
_NAME_FIELDS: dict[str, bytes] = {}


def epoch_copy(events: Iterable[EpochEvent]) -> Encoded:
    """The nnt_epoch_metric rows of epoch_rows() in binary COPY format, built in one pass.

    The ingest hot path: per point one concatenation of fields encoded once per event or
    per metric name. points() drops non-finite values. An event the table cannot hold (an
    epoch past int4, a name that is not UTF-8) raises SinkError, as the database would: its
    batch is written event by event and that one dead-lettered (agents.persist).
    """
    out = [COPY_SIGNATURE]
    add = out.append
    names = _NAME_FIELDS
    count = 0
    for e in events:
        try:
            head = _EPOCH_HEAD.pack(5, 16, e.simulation_id.bytes, 4, e.epoch)
            tail = copy_timestamptz_field(e.at)
            points = e.points()
            for m, v in points.items():
                name = names.get(m)
                if name is None:
                    if len(names) >= 10_000:
                        names.clear()
                    name = names[m] = copy_text_field(m)
                add(head + name + _VALUE.pack(8, v) + tail)
        except (struct.error, OverflowError, UnicodeEncodeError) as exc:
            raise SinkError(
                f"epoch {e.epoch} of {e.simulation_id} cannot be stored: {exc}"
            ) from exc
        count += len(points)
    add(COPY_TRAILER)
    return Encoded(b"".join(out), count)


def columns(rows: list[Row], width: int) -> list[list[Any]]:
    """Rows as `width` columns: the arrays a statement unnests."""
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in range(width)]


def _instant(at: datetime) -> datetime:
    """`at` comparable with any other (a client may send a time without zone: UTC)."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def metric_summaries(events: Iterable[EpochEvent]) -> list[list[Any]]:
    """The parameters of store.summaries.MERGE_METRICS: one row per (simulation, metric) of
    the batch, folded as that statement folds rows into the table, as columns (simulation,
    metric, last, last_epoch, last_at, best_min, min_epoch, best_max, max_epoch, nonfinite);
    a non-finite metric (None) sets `nonfinite`."""
    acc: dict[tuple[uuid.UUID, str], list[Any]] = {}
    for e in events:
        sid, epoch, at = e.simulation_id, e.epoch, e.at
        for metric, value in e.metrics.items():
            if value is None:
                acc.setdefault((sid, metric), [None] * 7 + [False])[7] = True
        for metric, value in e.points().items():
            s = acc.get((sid, metric))
            if s is None or s[1] is None:
                acc[(sid, metric)] = [
                    value,
                    epoch,
                    at,
                    value,
                    epoch,
                    value,
                    epoch,
                    bool(s and s[7]),
                ]
                continue
            if epoch > s[1] or (epoch == s[1] and _instant(at) > _instant(s[2])):
                s[0:3] = value, epoch, at
            if value < s[3] or (value == s[3] and epoch < s[4]):
                s[3:5] = value, epoch
            if value > s[5] or (value == s[5] and epoch < s[6]):
                s[5:7] = value, epoch
    return columns([(sid, metric, *s) for (sid, metric), s in acc.items()], 10)


def tensor_flags(headers: Iterable[TensorHeader]) -> list[list[Any]]:
    """The parameters of store.summaries.MERGE_FLAGS: each health flag of the tensors'
    statistics (on chunk 0) as columns (simulation, epoch, flag); NULL for no flag."""
    out: list[Row] = []
    for h in headers:
        if h.chunk == 0:
            flags = (h.stats.flags if h.stats is not None else []) or [None]
            out.extend((h.simulation_id, h.epoch, flag) for flag in flags)
    return columns(out, 3)


def batch_rows(events: Iterable[EpochEvent]) -> list[Row]:
    """One nnt_batch_metric row per metric of each batch-level point (kept raw)."""
    return [
        (e.simulation_id, e.epoch, point.step, metric, value, e.at)
        for e in events
        for point in e.batches
        for metric, value in point.metrics.items()
    ]


def tensor_row(header: TensorHeader, payload: bytes, reduced: bool = False) -> Row:
    """One nnt_tensor row per chunk; statistics (with histogram) travel on chunk 0.

    `reduced`: the sink dropped the tensor's values (full-tensor period); stats stay.
    """
    stats = header.stats.model_dump(exclude_none=True) if header.stats is not None else None
    return (
        header.simulation_id,
        header.layer_index,
        header.layer_name,
        header.kind,
        header.variable,
        header.epoch,
        header.chunk,
        header.chunks,
        header.dtype,
        header.shape,
        header.compression,
        payload if header.chunks > 0 else None,
        Jsonb(stats) if stats is not None else None,
        reduced,
        header.at,
    )


def status_row(event: StatusEvent) -> Row:
    """One nnt_status_event history row (the event must name its simulation)."""
    return (
        event.simulation_id,
        event.at,
        event.status,
        event.epoch,
        event.message,
        event.command_id,
    )


def resource_row(sample: ResourceSample) -> Row:
    """One nnt_resource row."""
    return (
        sample.simulation_id,
        sample.at,
        sample.cpu_percent,
        sample.memory_bytes,
        sample.memory_limit_bytes,
        sample.gpu_percent,
        sample.gpu_memory_bytes,
    )


def evidence_rows(events: Iterable[EpochEvent]) -> list[Row]:
    """One nnt_epoch_evidence row per epoch event that carries evidence."""
    return [
        (e.simulation_id, e.epoch, Jsonb(clean(e.evidence.model_dump(exclude_none=True))), e.at)
        for e in events
        if e.evidence is not None
    ]


@dataclass
class Diagnosed:
    """A batch's diagnoses folded per run, as store.diagnoses.merge takes them: each run's
    latest diagnosed (epoch, at), and per (run, problem) the text of the latest epoch that
    carried it with the least first epoch."""

    runs: list[dict[str, Any]]
    rows: list[dict[str, Any]]


def _diagnosis_row(e: EpochEvent, d: Diagnosis, at: datetime) -> dict[str, Any]:
    return clean(
        d.model_dump(mode="json", exclude={"last_epoch"})
        | {"simulation_id": str(e.simulation_id), "last_epoch": e.epoch, "last_at": at.isoformat()}
    )


def diagnosis_rows(events: Iterable[EpochEvent]) -> Diagnosed:
    """The diagnoses of a batch's epoch events (those with `diagnoses` not None: `[]` is an
    epoch diagnosed healthy), folded so that each key appears once (ON CONFLICT may touch a
    row once per statement)."""
    latest: dict[uuid.UUID, tuple[int, datetime]] = {}
    rows: dict[tuple[uuid.UUID, str], dict[str, Any]] = {}
    for e in events:
        if e.diagnoses is None:
            continue
        sid, key = e.simulation_id, (e.epoch, _instant(e.at))
        if sid not in latest or key > latest[sid]:
            latest[sid] = key
        for d in e.diagnoses:
            row = _diagnosis_row(e, d, key[1])
            old = rows.get((sid, d.problem))
            if old is None or key > (old["last_epoch"], old["_at"]):
                first = (
                    row["first_epoch"]
                    if old is None
                    else min(old["first_epoch"], row["first_epoch"])
                )
                rows[(sid, d.problem)] = row | {"first_epoch": first, "_at": key[1]}
            else:
                old["first_epoch"] = min(old["first_epoch"], row["first_epoch"])
    runs = [
        {"simulation_id": str(sid), "epoch": epoch, "at": at.isoformat()}
        for sid, (epoch, at) in sorted(latest.items())
    ]
    return Diagnosed(runs, [{k: v for k, v in r.items() if k != "_at"} for r in rows.values()])


@dataclass
class EpochRows:
    """Every row a batch of epoch events writes, built once before its write (agents:
    while the previous batch's write is in flight, not during this one's)."""

    events: list[EpochEvent]
    metrics: Encoded
    batches: list[Row]
    summaries: list[list[Any]]
    evidence: list[Row]
    diagnosed: Diagnosed

    @classmethod
    def of(cls, events: list[EpochEvent]) -> EpochRows:
        """The rows of `events` (SinkError for an event the tables cannot hold)."""
        return cls(
            events,
            epoch_copy(events),
            batch_rows(events),
            metric_summaries(events),
            evidence_rows(events),
            diagnosis_rows(events),
        )

    def holds(self, events: list[EpochEvent]) -> bool:
        """Whether these are the rows of exactly `events` (the same objects, in order)."""
        return len(events) == len(self.events) and all(
            a is b for a, b in zip(events, self.events, strict=True)
        )
