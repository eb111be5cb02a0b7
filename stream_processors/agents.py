"""Faust agents: decode, persist through the one sink, then feed nnt.live.

Offsets versus rows: `take_batches` (stream_processors.consumer: Faust 0.15.3's
`Stream.take_events`, handing a batch over once the stream is quiet) disables the stream's
automatic acks and acks the events of a batch in the `finally` after its `yield`, i.e. only
when the agent asks for the next batch, after our `sink.run(...)` returned from COMMIT. The
consumer commits only acked offsets (every `broker_commit_interval`), so a crash between
COMMIT and the offset commit replays rows that ON CONFLICT DO NOTHING ignores, and a crash
before COMMIT replays rows never written: at-least-once delivery, exactly-once rows.
Sink agents run with concurrency=1 (faust-streaming issue 606 loses messages otherwise).
nnt.epochs, the busiest topic, reaches its agent past Faust's streams (consumer.Direct): its
batches carry the same `.message` as Faust's events, and its commits follow rows alike.

Every write first takes the deletion guard (store.deletion): rows of a simulation
already deleted are skipped, and a `deleted` status purges the simulation's rows in its own
transaction.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from functools import partial
from typing import TypeVar

import psycopg
from faust.types import EventT, StreamT

from schemas import topics
from schemas.epochs import EpochEvent
from schemas.live import LiveUpdate
from schemas.resources import ResourceSample
from schemas.status import StatusEvent
from schemas.tensors import TensorHeader
from store import deletion, diagnoses, summaries
from store import projection as run_rows
from store.sink import SinkError
from stream_processors import aggregates, decoding, downsample, projection, rows
from stream_processors.app import (
    SINK_TOPICS,
    app,
    epochs_topic,
    maintenance,
    maintenance_sink,
    policy,
    provenance,
    resources_topic,
    settings,
    sink,
    status_topic,
    tag_throttle,
    tensors_topic,
    throttle,
)
from stream_processors.consumer import take_batches
from stream_processors.inflight import OneInFlight
from stream_processors.liveness import PartitionWatch, state_lines
from stream_processors.outputs import DiagnosisLive, Held, dead_letter, dead_letters, send_live
from stream_processors.provenance import UNSIGNED, signature
from stream_processors.throttle import live_point

log = logging.getLogger(__name__)
T = TypeVar("T")
Conn = psycopg.AsyncConnection[tuple]
Write = Callable[[Conn, list[T]], Awaitable[list[T]]]

BATCH = settings.nnt_stream_batch_size
WITHIN = settings.nnt_stream_batch_within
IDLE = settings.nnt_stream_batch_idle
# Events stored (or skipped as deleted) per (topic, partition) since the last report.
stored: Counter[tuple[str, int]] = Counter()
diagnosis_live = DiagnosisLive()


async def decode(
    events: Sequence[EventT],
    parse: decoding.Parse[T],
    names: Callable[[T], uuid.UUID | None] | None = None,
    service: bool = False,
    runs: bool = True,
) -> list[tuple[EventT, T]]:
    """Parse every event (a missing `at` taken from the record, see decoding). With `names`
    (the simulation an event names), only events signed by that run's key (unless not
    `runs`), or with `service` the orchestrator's, are kept (stream_processors.provenance).
    The rest go to the dead-letter topic with their reason, and count as written."""
    out, refused = [], []
    for event in events:
        msg = event.message
        raw = msg.value or b""
        sig = signature(msg.headers) if names is not None else None
        if names is not None and sig is None:  # checked first: no decoding work for forgeries
            refused.append((event, UNSIGNED))
            continue
        try:
            obj = parse(raw, msg.timestamp)
        except ValueError as exc:  # pydantic.ValidationError and TensorCodecError are ValueErrors
            refused.append((event, f"cannot decode: {exc}"))
            continue
        if names is not None and sig is not None:
            why = provenance.refusal(sig, raw, names(obj), service, runs)
            if why is not None:
                refused.append((event, why))
                continue
        out.append((event, obj))
    if refused:
        await dead_letters(refused)
        done(event for event, _ in refused)
    return out


def done(events: Iterable[EventT]) -> None:
    """These events' rows are committed (or they were dead-lettered): their offsets may be
    committed to Kafka (stream_processors.consumer.Written)."""
    written = app.consumer.written
    for event in events:
        written.add(event.message.tp, event.message.offset)


async def persist(items: list[tuple[EventT, T]], write: Write[T]) -> list[T]:
    """Write a batch in one transaction; on a content error, retry event by event.

    Returns what was written. An event the database refuses on its own is dead-lettered,
    so one bad row never holds back its batch or stops the worker.
    """
    if not items:
        return []
    try:
        written = await sink.run(lambda conn: write(conn, [obj for _, obj in items]))
        stored.update((ev.message.topic, ev.message.partition) for ev, _ in items)
        done(ev for ev, _ in items)
        return written
    except SinkError as exc:
        if len(items) == 1:
            await dead_letter(items[0][0], f"database refused it: {exc}")
            done([items[0][0]])
            return []
    out: list[T] = []
    for item in items:
        out += await persist([item], write)
    return out


async def alive(conn: Conn, objs: list[T], sid: Callable[[T], uuid.UUID]) -> list[T]:
    """The objects whose simulation is not deleted (see deletion.guard)."""
    gone = await deletion.guard(conn, {sid(o) for o in objs})
    if not gone:
        return objs
    kept = [o for o in objs if sid(o) not in gone]
    for deleted in sorted(gone):
        log.info("simulation %s: skipping late events, it was deleted", deleted)
    log.info("skipped %d late events of deleted simulations", len(objs) - len(kept))
    return kept


async def write_epochs(
    conn: Conn,
    events: list[EpochEvent],
    *,
    built: rows.EpochRows | None,
    held: Held,
) -> list[EpochEvent]:
    """Epoch metrics and raw batch points of a batch of epoch events, their runs' metric
    summaries, evidence and diagnoses; the live updates of changed diagnoses are kept in the
    batch's `held` for after COMMIT (diagnosis_live). `built`: these events' rows, built
    beforehand (used only if they are the rows of exactly the events written)."""
    kept = await alive(conn, events, lambda e: e.simulation_id)
    out = built if built is not None and built.holds(kept) else rows.EpochRows.of(kept)
    await sink.copy(conn, rows.EPOCH_METRIC, out.metrics)
    await sink.copy(conn, rows.BATCH_METRIC, out.batches)
    await summaries.merge_metrics(conn, out.summaries)
    await sink.copy(conn, rows.EVIDENCE, out.evidence)
    batch = out.diagnosed
    if batch.runs:
        changed = diagnosis_live.changed(await diagnoses.merge(conn, batch.runs, batch.rows))
        if changed:
            diagnosis_live.hold(held, changed, await diagnoses.run_facts(conn, changed))
    return kept


Chunk = tuple[TensorHeader, bytes]


async def write_tensors(conn: Conn, chunks: list[Chunk]) -> list[Chunk]:
    """One row per tensor chunk, full values only every `nnt_full_tensor_period` epochs; the
    runs' health flags."""
    chunks = await alive(conn, chunks, lambda c: c[0].simulation_id)
    kept = downsample.thin_at_sink(chunks, policy.full_tensor_period)
    await sink.copy(conn, rows.TENSOR, [rows.tensor_row(h, p, r) for h, p, r in kept])
    await summaries.merge_flags(conn, rows.tensor_flags(h for h, _ in chunks))
    return chunks


async def write_resources(conn: Conn, samples: list[ResourceSample]) -> list[ResourceSample]:
    """One row per resource sample."""
    samples = await alive(conn, samples, lambda s: s.simulation_id)
    await sink.copy(conn, rows.RESOURCE, [rows.resource_row(s) for s in samples])
    return samples


async def write_status(conn: Conn, events: list[StatusEvent]) -> list[StatusEvent]:
    """History rows, then the projection in event order; a `deleted` event purges its
    simulation's rows. Events of simulations deleted before this batch are skipped."""
    await deletion.lock_for_purge(
        conn, {e.simulation_id for e in events if e.simulation_id and e.status == "deleted"}
    )
    gone = await deletion.deleted_among(conn, {e.simulation_id for e in events if e.simulation_id})
    events = [e for e in events if e.simulation_id not in gone]
    await sink.copy(
        conn, rows.STATUS_EVENT, [rows.status_row(e) for e in events if e.simulation_id]
    )
    for event in events:
        if projection.is_lifecycle(event):
            owner = await run_rows.project(conn, event)
            # The orchestrator's events name no owner, and list pages listen by owner: without
            # the row's, its pause, stop, failure or delete never reached the owner's lists.
            if owner and not event.owner:
                event.owner = owner
            if event.status == "deleted" and event.simulation_id is not None:
                await deletion.purge(conn, event.simulation_id)
    return events


async def flush_live() -> None:
    """Send the coalesced points of every simulation whose interval has passed."""
    for sid, points in throttle.due(time.monotonic()):
        await send_live(LiveUpdate(kind="epochs", simulation_id=sid, points=points))


def _simulation(event: EpochEvent | StatusEvent) -> uuid.UUID | None:
    return event.simulation_id


def _sample_simulation(sample: ResourceSample) -> uuid.UUID:
    return sample.simulation_id


def _chunk_simulation(chunk: Chunk) -> uuid.UUID:
    return chunk[0].simulation_id


async def store_epochs(items: list[tuple[EventT, EpochEvent]], writes: OneInFlight) -> None:
    """Submit a batch of epoch events to `writes`, its rows built now, while the previous
    write is in flight (an event the tables cannot hold leaves them to be built, and
    refused, in the write); once committed, its live points and diagnosis updates go out."""
    try:
        built: rows.EpochRows | None = rows.EpochRows.of([e for _, e in items])
    except SinkError:
        built = None
    held: Held = {}
    await writes.submit(
        persist(items, partial(write_epochs, built=built, held=held)),
        partial(publish_epochs, held=held),
    )


async def publish_epochs(written: list[EpochEvent], held: Held) -> None:
    """After a batch of epoch events committed: its live points, diagnosis updates and tag
    contributions."""
    for event in written:
        throttle.add(event.simulation_id, [live_point(event)])
    await flush_live()
    for update in diagnosis_live.release(held, {e.simulation_id for e in written}):
        await send_live(update)
    await aggregates.contribute_events(written)


@app.agent(epochs_topic, concurrency=1)
async def persist_epochs(stream: StreamT) -> None:
    """nnt.epochs -> nnt_epoch_metric, nnt_batch_metric, evidence and diagnoses, then
    throttled nnt.live points and the `diagnosis` updates of changed active sets."""
    direct = app.consumer.direct[topics.EPOCHS]  # its messages come this way, not `stream`
    writes = OneInFlight()
    try:
        while True:
            batch = await direct.take(BATCH, WITHIN, IDLE)
            if batch:
                items = await decode(batch, decoding.epoch_event, _simulation)
                await store_epochs(items, writes)
    finally:
        await writes.drain()


@app.agent(tensors_topic, concurrency=1)
async def persist_tensors(stream: StreamT) -> None:
    """nnt.tensors -> nnt_tensor, one row per chunk."""
    writes = OneInFlight()
    try:
        async for batch in take_batches(stream, BATCH, WITHIN, IDLE):
            items = await decode(batch, decoding.tensor_chunk, _chunk_simulation)
            await writes.submit(persist(items, write_tensors))
    finally:
        await writes.drain()


@app.agent(resources_topic, concurrency=1)
async def persist_resources(stream: StreamT) -> None:
    """nnt.resources -> nnt_resource."""
    async for batch in take_batches(stream, BATCH, WITHIN, IDLE):
        # Signed by an orchestrator only: a run's trainer cannot report its own use.
        items = await decode(
            batch, decoding.json_event(ResourceSample), _sample_simulation, service=True, runs=False
        )
        await persist(items, write_resources)


@app.agent(status_topic, concurrency=1)
async def persist_status(stream: StreamT) -> None:
    """nnt.status -> nnt_status_event history, the nnt_simulation projection, live status."""
    async for batch in take_batches(stream, BATCH, WITHIN, IDLE):
        items = await decode(batch, decoding.json_event(StatusEvent), _simulation, service=True)
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
    """The most recent lifecycle event of each simulation in a batch; `deleted` is final, as
    in the projection (a trainer's late `running`, stamped by a clock ahead, must not bring a
    deleted run back to life on the pages)."""
    out: dict[uuid.UUID, StatusEvent] = {}
    for event in events:
        sid = event.simulation_id
        if sid is None or not projection.is_lifecycle(event):
            continue
        last = out.get(sid)
        if last is None or (
            last.status != "deleted" and (event.status == "deleted" or last.at <= event.at)
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
            # on `failed`: the full error behind the one-line message, for the page's details
            **({"error": run_rows.failure_text(event)} if event.status == "failed" else {}),
        },
    )


@app.task
async def open_database() -> None:
    """Connect at start, retrying with back-off while PostgreSQL is not up yet."""
    await sink.open()


@app.timer(settings.live_interval / 4)
async def live_timer() -> None:
    """Flush coalesced live points so the last ones go out even when epochs stop coming
    (four ticks per live interval: a held point waits at most a quarter interval more)."""
    if throttle.pending():
        await flush_live()
    if tag_throttle.pending():
        await aggregates.flush_tag_live()


@app.timer(settings.nnt_stream_report_s)
async def report() -> None:
    """Log what this worker stored since the last report, per topic and partition."""
    counts = dict(stored)
    stored.clear()
    for topic in sorted({t for t, _ in counts}):
        parts = sorted(p for t, p in counts if t == topic)
        total = sum(counts[(topic, p)] for p in parts)
        log.info(
            "stored %d events of %s from partitions %s in the last %.0fs",
            total,
            topic,
            parts,
            settings.nnt_stream_report_s,
        )


watch = PartitionWatch(settings.nnt_stall_checks)


@app.task
async def dump_state_on_sigusr1() -> None:
    """`kill -USR1 <worker>` logs the consumer's view of each sink partition."""
    import signal

    def dump() -> None:
        log.warning("worker state on SIGUSR1:\n%s", "\n".join(state_lines(app, SINK_TOPICS)))

    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump)


@app.timer(settings.nnt_partition_check_s)
async def keep_partitions_moving() -> None:
    """Move again a sink partition Faust stopped reading (stream_processors.liveness)."""
    consumer = app.consumer
    tps = [tp for tp in consumer.assignment() if tp.topic in SINK_TOPICS]
    if app.rebalancing or app.in_recovery or not tps:
        watch.reset()
        return
    try:  # bounded: a check that never returns would end every later check (timers queue)
        ends = await asyncio.wait_for(
            consumer.highwaters(*tps), max(10.0, settings.nnt_partition_check_s)
        )
    except Exception as exc:  # the broker is away: nothing to decide this time
        log.info("partition check skipped: %s", exc)
        return
    try:
        await asyncio.wait_for(
            consumer.know_committed(tps), max(10.0, settings.nnt_partition_check_s)
        )
    except Exception as exc:  # asked again at the next check
        log.info("committed offsets not known yet: %s", exc)
    reads = {tp: consumer._read_offset.get(tp) for tp in tps}
    committed = {tp: consumer._committed_offset.get(tp) for tp in tps}
    moves = watch.check(consumer.unfetched(SINK_TOPICS), reads, ends, committed, not sink.busy)
    if not (moves.resume or moves.seek):
        return
    log.warning("partitions out of fetching %s, or not moving with messages waiting %s: "
                "moving them again\n%s", sorted(moves.resume), sorted(moves.seek),
                "\n".join(state_lines(app, SINK_TOPICS)))  # fmt: skip
    consumer.resume_partitions(moves.resume)
    for tp in moves.seek:
        done, read = committed.get(tp), reads.get(tp)
        await consumer.read_again(tp, done if done is not None else (read or -1) + 1)


@app.timer(settings.nnt_maintenance_interval_s)
async def maintain() -> None:
    """Downsample old batch points and thin old full tensors on native tables (one worker at a
    time); on TimescaleDB the database does it (stream_processors.downsample.Maintenance)."""
    if maintenance.native is False:
        return
    try:
        done = await maintenance_sink.run(maintenance.run)
    except SinkError as exc:
        log.error("maintenance pass failed: %s", exc)
        return
    if maintenance.native is False:
        await maintenance_sink.close()  # never needed again
    elif any(done.values()):
        log.info("maintenance: %s", done)
