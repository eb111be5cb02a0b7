"""Faust agents: decode, persist through the one sink, then feed nnt.live.

Offsets versus rows: `Stream.take_events` (faust/streams.py, 0.15.3) disables the stream's
automatic acks and acks the events of a batch in the `finally` after its `yield`, i.e. only
when the agent asks for the next batch, after our `sink.run(...)` returned from COMMIT. The
consumer commits only acked offsets (every `broker_commit_interval`), so a crash between
COMMIT and the offset commit replays rows that ON CONFLICT DO NOTHING ignores, and a crash
before COMMIT replays rows never written: at-least-once delivery, exactly-once rows.
Sink agents run with concurrency=1 (faust-streaming issue 606 loses messages otherwise).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import psycopg
from faust.types import EventT, StreamT

from schemas.epochs import EpochEvent
from schemas.live import LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader, unpack
from stream_processors import aggregates, downsample, projection, rows
from stream_processors.app import (
    app,
    epochs_topic,
    maintenance_sink,
    policy,
    resources_topic,
    settings,
    sink,
    status_topic,
    tag_throttle,
    tensors_topic,
    throttle,
)
from stream_processors.outputs import dead_letter, send_live
from stream_processors.sink import SinkError
from stream_processors.throttle import live_point

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple]
Write = Callable[[Conn, list[T]], Awaitable[Any]]

BATCH = settings.nnt_stream_batch_size
WITHIN = settings.nnt_stream_batch_within


async def decode(events: Sequence[EventT], parse: Callable[[bytes], T]) -> list[tuple[EventT, T]]:
    """Parse every event; the undecodable ones go to the dead-letter topic."""
    out = []
    for event in events:
        try:
            out.append((event, parse(event.message.value or b"")))
        except ValueError as exc:  # pydantic.ValidationError and TensorCodecError are ValueErrors
            await dead_letter(event, f"cannot decode: {exc}")
    return out


async def persist(items: list[tuple[EventT, T]], write: Write[T]) -> list[T]:
    """Write a batch in one transaction; on a content error, retry event by event.

    Returns what was written. An event the database refuses on its own is dead-lettered,
    so one bad row never holds back its batch or stops the worker.
    """
    if not items:
        return []
    try:
        await sink.run(lambda conn: write(conn, [obj for _, obj in items]))
        return [obj for _, obj in items]
    except SinkError as exc:
        if len(items) == 1:
            await dead_letter(items[0][0], f"database refused it: {exc}")
            return []
    written: list[T] = []
    for item in items:
        written += await persist([item], write)
    return written


async def write_epochs(conn: Conn, events: list[EpochEvent]) -> None:
    """Epoch metrics and raw batch points of a batch of epoch events."""
    await sink.copy(conn, rows.EPOCH_METRIC, rows.epoch_copy_text(events))
    await sink.copy(conn, rows.BATCH_METRIC, rows.batch_rows(events))


async def write_tensors(conn: Conn, chunks: list[tuple[TensorHeader, bytes]]) -> None:
    """One row per tensor chunk, full values only every `nnt_full_tensor_period` epochs."""
    kept = downsample.thin_at_sink(chunks, policy.full_tensor_period)
    await sink.copy(conn, rows.TENSOR, [rows.tensor_row(h, p, r) for h, p, r in kept])


async def write_resources(conn: Conn, samples: list[ResourceSample]) -> None:
    """One row per resource sample."""
    await sink.copy(conn, rows.RESOURCE, [rows.resource_row(s) for s in samples])


async def write_status(conn: Conn, events: list[StatusEvent]) -> dict[uuid.UUID, str]:
    """History rows, then the projection in event order; returns owners of changed rows."""
    await sink.copy(
        conn, rows.STATUS_EVENT, [rows.status_row(e) for e in events if e.simulation_id]
    )
    owners: dict[uuid.UUID, str] = {}
    for event in events:
        if projection.is_lifecycle(event):
            owner = await projection.project(conn, event)
            if owner is not None and event.simulation_id is not None:
                owners[event.simulation_id] = owner
    return owners


async def flush_live() -> None:
    """Send the coalesced points of every simulation whose interval has passed."""
    for sid, points in throttle.due(time.monotonic()):
        await send_live(LiveUpdate(kind="epochs", simulation_id=sid, points=points))


@app.agent(epochs_topic, concurrency=1)
async def persist_epochs(stream: StreamT) -> None:
    """nnt.epochs -> nnt_epoch_metric, nnt_batch_metric, then throttled nnt.live points."""
    async for batch in stream.take_events(BATCH, within=WITHIN):
        written = await persist(await decode(batch, EpochEvent.model_validate_json), write_epochs)
        for event in written:
            throttle.add(event.simulation_id, [live_point(event)])
        await flush_live()
        await aggregates.contribute_events(written)


@app.agent(tensors_topic, concurrency=1)
async def persist_tensors(stream: StreamT) -> None:
    """nnt.tensors -> nnt_tensor, one row per chunk."""
    async for batch in stream.take_events(BATCH, within=WITHIN):
        await persist(await decode(batch, unpack), write_tensors)


@app.agent(resources_topic, concurrency=1)
async def persist_resources(stream: StreamT) -> None:
    """nnt.resources -> nnt_resource."""
    async for batch in stream.take_events(BATCH, within=WITHIN):
        await persist(await decode(batch, ResourceSample.model_validate_json), write_resources)


@app.agent(status_topic, concurrency=1)
async def persist_status(stream: StreamT) -> None:
    """nnt.status -> nnt_status_event history, the nnt_simulation projection, live status."""
    async for batch in stream.take_events(BATCH, within=WITHIN):
        items = await decode(batch, StatusEvent.model_validate_json)
        for _, event in items:
            if event.simulation_id is None:
                log.info(
                    "status %s without simulation (command %s): %s",
                    event.status,
                    event.command_id,
                    event.message,
                )
        written = await persist(items, write_status)
        for event in latest_lifecycle(written).values():
            await send_live(status_update(event))
        kept = {id(e) for e in written}
        await aggregates.remember_tags([(ev, e) for ev, e in items if id(e) in kept])


def latest_lifecycle(events: list[StatusEvent]) -> dict[uuid.UUID, StatusEvent]:
    """The most recent lifecycle event of each simulation in a batch."""
    out: dict[uuid.UUID, StatusEvent] = {}
    for event in events:
        sid = event.simulation_id
        if (
            sid is not None
            and projection.is_lifecycle(event)
            and (sid not in out or out[sid].at <= event.at)
        ):
            out[sid] = event
    return out


def status_update(event: StatusEvent) -> LiveUpdate:
    """The compact live form of a status event."""
    return LiveUpdate(
        kind="status",
        simulation_id=event.simulation_id,
        owner=event.owner,
        status={
            "status": event.status,
            "epoch": event.epoch,
            "total_epochs": event.total_epochs,
            "message": event.message,
        },
    )


@app.task
async def open_database() -> None:
    """Connect at start, retrying with back-off while PostgreSQL is not up yet."""
    await sink.open()


@app.timer(0.1)
async def live_timer() -> None:
    """Flush coalesced live points so the last ones go out even when epochs stop coming."""
    if throttle.pending():
        await flush_live()
    if tag_throttle.pending():
        await aggregates.flush_tag_live()


@app.timer(settings.nnt_maintenance_interval_s)
async def maintenance() -> None:
    """Downsample old batch points and thin old full tensors (one worker at a time)."""
    try:
        done = await maintenance_sink.run(lambda conn: downsample.maintain(conn, policy))
    except SinkError as exc:
        log.error("maintenance pass failed: %s", exc)
        return
    if any(done.values()):
        log.info("maintenance: %s", done)
