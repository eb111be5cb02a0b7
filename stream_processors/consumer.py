"""Faust's consumer, made to read again what its fetcher skipped instead of committing past it.

faust-streaming 0.15 records a jump in one partition's offsets as a "gap" and later counts the
gap as processed, so the group's commit moves past messages that were never handed to an
agent; the fetcher then drops them when they do arrive ("offset below the read offset"). After
a restart that restores table changelogs, the fetcher can deliver a partition from a stale
position (seen here: read offset 1212, next message 1349): epochs 69-82 of one run were
acknowledged by Kafka and never stored (faust-streaming issue 606; its fix covers apps
without tables only). Our topics are never compacted nor transactional, so a jump is always a
skipped read: this consumer seeks back to the first skipped offset and reads it again (writes
ignore existing keys, so the messages delivered twice are harmless). A rewind that does not
bring the offset back (retention deleted it) falls back to Faust's gap.

Two more holes of Faust 0.15.3 are closed here: its commit could move past one offset not
yet acked at the head of a partition (`_new_offset`), and its seek to the committed offsets
after a rebalance wrote read offsets past a rewind still pending from before (`perform_seek`);
together they lost one epoch of one run when a worker stopped and another took its
partitions (tests/integration/stream_processors/test_stream_workers.py, under CPU load).

And one cost: Faust's drain loop hands each message to the topic conductor inside
`wait_first(callback, suspend_flow.wait())`, which creates four tasks and an `asyncio.wait`
per message, about a third of the worker's CPU at ingest rates (profile in
docs/stream-processing.md). The callback almost never waits (it puts the event into the
stream's buffer without blocking unless the flow is suspended), so `_drain_messages` here
drives it by hand first and falls back to Faust's `wait_first` only when it does wait
(`drive`), with the same result either way.

And one wait: Faust's `Stream.take_events` hands a partial batch over only after `within`
seconds, so a lone epoch waited up to 0.2 s before it was written and pushed to the pages.
`take_batches` hands it over once the stream has been quiet for `idle` seconds; a busy
stream still fills its batches by size.

And the per-message path itself, for the busiest topic: Faust hands every message through its
conductor, the agent's channel queue, the stream's iterator, the batch's processor and an ack,
about 40% of the worker's CPU at ingest rates. A sink topic registered in `direct` (nnt.epochs)
skips all of it: the drain loop puts its messages into a `Direct`, from which its agent takes
batches. Nothing is lost by that: a sink partition's commit follows rows (`Written`), not acks,
so Faust's acks never counted there; `_filter_tps_with_pending_acks` offers such partitions for
a commit, which Faust otherwise offers only once something was acked; revoked partitions'
waiting messages are dropped, as Faust drops its buffers, and read again by their next owner
from the committed offset.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Coroutine,
    Generator,
    Iterator,
)
from typing import Any, cast

from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaDriverConsumer
from faust.types import TP

log = logging.getLogger(__name__)


class ReadOffsets(dict[TP, int | None]):
    """Faust's read offsets (the last offset handed out per partition), except that while a
    rewind is pending a write past its target is ignored: it comes from a message fetched
    before the seek, and would make the fetcher drop the messages read again."""

    def __init__(self) -> None:
        super().__init__()
        self.rewinds: dict[TP, int] = {}

    def __missing__(self, tp: TP) -> None:
        return None

    def __setitem__(self, tp: TP, offset: int | None) -> None:
        if self.rewinds:  # seldom: the drain loop sets an offset per message
            target = self.rewinds.get(tp)
            if target is not None and offset is not None:
                if offset > target:
                    return
                if offset == target:
                    del self.rewinds[tp]  # the first skipped message has been read again
        dict.__setitem__(self, tp, offset)

    def pop(self, tp: TP, *default: int | None) -> int | None:  # type: ignore[override]
        """A revoked partition forgets its pending rewind too (Faust pops revoked ones)."""
        self.rewinds.pop(tp, None)
        return super().pop(tp, *default)

    def rewind(self, tp: TP, target: int) -> None:
        """Hand out `target` next: the read offset goes just before it, whatever was read."""
        self.rewinds[tp] = target
        super().__setitem__(tp, target - 1)


class Written:
    """Offsets of the sink topics whose rows are committed in PostgreSQL (or that were given
    up on purpose: dead letters), per partition, from the committed offset on.

    The commit of a sink partition never passes the first offset missing here, whatever Faust
    acked: under rebalances while batches were in flight, faust-streaming 0.15.3 was seen to
    ack and commit a whole batch of 27 events that no write ever received (tests/integration/
    stream_processors/test_stream_workers.py under CPU load), so Faust's acks are not proof
    of a write. Rows decide instead; a partition whose commit then stands still is read again
    from it (stream_processors.liveness) and the rows missing are written.
    """

    def __init__(self) -> None:
        self.topics: set[str] = set()
        self._done: dict[TP, set[int]] = {}
        self._gone: dict[TP, list[tuple[int, int]]] = {}

    def add(self, tp: TP, offset: int) -> None:
        """`offset` of `tp` is in the database (or dead-lettered)."""
        if tp.topic in self.topics:
            self._done.setdefault(tp, set()).add(offset)

    def gone(self, tp: TP, start: int, end: int) -> None:
        """Offsets start..end-1 no longer exist (retention deleted them before they were read):
        nothing can be written for them, so the commit may pass them."""
        if tp.topic in self.topics and start < end:
            self._gone.setdefault(tp, []).append((start, end))

    def mark(self, tp: TP, committed: int) -> int:
        """The first offset from `committed` on that is not done; forgets those below it."""
        done, gone = self._done.get(tp, set()), self._gone.get(tp, [])
        mark = committed
        while True:
            if mark in done:
                mark += 1
                continue
            past = [end for start, end in gone if start <= mark < end]
            if not past:
                break
            mark = max(past)
        self._done[tp] = {o for o in done if o >= mark}
        self._gone[tp] = [(start, end) for start, end in gone if end > mark]
        return mark

    def pending(self) -> set[TP]:
        """Partitions with written offsets not yet behind a commit."""
        return {tp for tp, done in self._done.items() if done} | {
            tp for tp, gone in self._gone.items() if gone
        }

    def forget(self, tps: Collection[TP]) -> None:
        """Partitions this worker no longer holds."""
        for tp in tps:
            self._done.pop(tp, None)
            self._gone.pop(tp, None)


class _GoOn:
    """Awaitable that goes on with a coroutine driven by hand until it first waited (it
    yielded `pending`), exactly as the task awaiting this would have driven it."""

    def __init__(self, coro: Coroutine[Any, Any, Any], pending: Any) -> None:
        self.coro, self.pending = coro, pending

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, pending = self.coro, self.pending
        while True:
            try:
                value = yield pending
            except BaseException as exc:  # cancellation and errors go into the coroutine
                try:
                    pending = coro.throw(exc)
                except StopIteration as done:
                    return done.value
            else:
                try:
                    pending = coro.send(value)
                except StopIteration as done:
                    return done.value


async def _go_on(coro: Coroutine[Any, Any, Any], pending: Any) -> Any:
    return await _GoOn(coro, pending)


def drive(coro: Coroutine[Any, Any, Any]) -> Awaitable[Any] | None:
    """Run `coro` by hand up to its first wait: None when it finished without waiting, else
    an awaitable that finishes it (to be awaited, or cancelled, by the caller)."""
    try:
        pending = coro.send(None)
    except StopIteration:
        return None
    return _go_on(coro, pending)


async def until_quiet(
    arrived: asyncio.Event,
    size: Callable[[], int],
    max_: int,
    within: float,
    idle: float,
    wait: Callable[[asyncio.Event, float], Awaitable[object]],
) -> None:
    """Return once a batch of `size()` items is to be handed over: `max_` of them, `within`
    seconds from now, or no new one (`arrived`) for `idle` seconds; `wait(event, timeout)`
    waits for an arrival."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while size() < max_:
        left = deadline - loop.time()
        if left <= 0:
            return
        seen = size()
        arrived.clear()
        await wait(arrived, min(idle, left))
        if size() == seen:
            return  # quiet for `idle`: hand the batch over now


async def _wait(event: asyncio.Event, timeout: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), timeout)


class Delivered:
    """A message handed to an agent straight from the drain loop (`Direct`), shaped like the
    Faust event the agents otherwise get: `.message`."""

    __slots__ = ("message",)

    def __init__(self, message: Any) -> None:
        self.message = message


class Direct:
    """The messages of one sink topic, handed by the drain loop straight to its agent in
    batches, past Faust's conductor, channel, stream and acks (a third of the worker's CPU
    per message at ingest rates). Safe for a sink topic only: its commits follow rows
    (`Written`), never acks. `maxsize` bounds what waits here: the drain loop stops
    reading until the agent takes a batch."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self.messages: list[Delivered] = []
        self.arrived = asyncio.Event()
        self.room = asyncio.Event()
        self.room.set()

    def put(self, message: Any) -> None:
        """One message from the drain loop."""
        self.messages.append(Delivered(message))
        self.arrived.set()
        if len(self.messages) >= self.maxsize:
            self.room.clear()

    def drop(self, tps: Collection[TP]) -> None:
        """Forget what waits of partitions this worker no longer holds: their next owner
        reads them from the committed offset."""
        self.messages = [m for m in self.messages if m.message.tp not in tps]
        if len(self.messages) < self.maxsize:
            self.room.set()

    async def take(self, max_: int, within: float, idle: float) -> list[Delivered]:
        """The next batch: up to `max_` messages, handed over once none arrived for `idle`
        seconds or `within` seconds after the first (as `take_batches`)."""
        while not self.messages:
            self.arrived.clear()
            await self.arrived.wait()
        await until_quiet(self.arrived, lambda: len(self.messages), max_, within, idle, _wait)
        batch, self.messages = self.messages[:max_], self.messages[max_:]
        if len(self.messages) < self.maxsize:
            self.room.set()
        return batch


class RewindingConsumer(AIOKafkaDriverConsumer):
    """The aiokafka driver consumer with skipped offsets read again (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets()
        self._rewound_at: dict[TP, int] = {}
        self.written = Written()
        self.direct: dict[str, Direct] = {}  # sink topics read past Faust's streams

    async def seek(self, partition: TP, offset: int) -> None:
        """Faust's own seeks (assignment, recovery) replace any pending rewind."""
        self._read_offset.rewinds.pop(partition, None)
        await super().seek(partition, offset)

    async def perform_seek(self) -> None:
        """Faust's seek to the committed offsets (after a rebalance or a recovery) starts every
        partition afresh: a rewind pending from before must not hold the read offset back
        (Faust writes the new read offsets with dict.update, past ReadOffsets' guard)."""
        self._read_offset.rewinds.clear()
        self._rewound_at.clear()
        await super().perform_seek()

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:  # type: ignore[override]
        """Revoked partitions drop their written offsets, and their messages waiting in a
        `Direct`, too."""
        self.written.forget(revoked)
        for direct in self.direct.values():
            direct.drop(revoked)
        await super().on_partitions_revoked(revoked)

    def _filter_tps_with_pending_acks(self, topics: Any = None) -> Iterator[TP]:
        """Faust commits the partitions with acks; a `Direct` topic is never acked, so its
        partitions with written offsets are offered for a commit too."""
        tps = set(super()._filter_tps_with_pending_acks(topics))
        tps.update(
            tp
            for tp in self.written.pending()
            if topics is None or tp in topics or tp.topic in topics
        )
        return iter(tps)

    def _new_offset(self, tp: TP) -> int | None:
        """The offset to commit: for a sink topic, the first one not yet written (Written);
        for any other, Faust's, but never past one that was neither acked nor given up.

        faust-streaming 0.15.3 returns None only when the first acked offset is more than
        one past the committed one (`min(acked) - committed > 1`), so a single offset not yet
        acked at the head was committed past: seen here as one epoch of one run acknowledged
        and never stored, when a partition's first message after a seek was not the
        committed one. Here any hole at the head waits (stream_processors.liveness reads a
        partition again whose committed offset stands still)."""
        committed = self._committed_offset[tp]
        acked = self._acked[tp]
        if tp.topic in self.written.topics:
            if committed is None:  # no baseline yet (see know_committed): nothing is provable
                return None
            mark = self.written.mark(tp, committed)
            acked[:] = [o for o in acked if o >= mark]  # Faust's list stays small
            self._acked_index[tp] = set(acked)
            return mark if mark > committed else None
        if acked and committed is not None:
            head = min(acked)
            gap = self._gap[tp]
            if gap:
                head = min(head, min(interval.begin for interval in gap))
            if head > committed:
                return None
        return super()._new_offset(tp)

    async def know_committed(self, tps: Collection[TP]) -> None:
        """Give each sink partition of `tps` without a known committed offset the group's (or,
        never committed, the log start): until then its commits wait (`_new_offset`).

        Faust learns committed offsets only in its seek after recovery, and reports a
        committed 0 as unknown; what is processed before that must not be committed from
        Faust's acks alone (seen: a worker that joined committed past a batch with no rows).
        """
        from aiokafka.structs import TopicPartition

        unknown = [
            tp
            for tp in tps
            if tp.topic in self.written.topics and self._committed_offset.get(tp) is None
        ]
        if not unknown:
            return
        client = self._thread._ensure_consumer()
        found: dict[TP, int | None] = {}
        for tp in unknown:
            found[tp] = await self._thread.call_thread(
                client.committed, TopicPartition(tp.topic, tp.partition)
            )
        never = [tp for tp, offset in found.items() if offset is None or offset < 0]
        if never:
            found.update(await self.earliest_offsets(*never))
        assigned = self.assignment()
        for tp, offset in found.items():
            if tp in assigned and offset is not None and self._committed_offset.get(tp) is None:
                self._committed_offset[tp] = offset

    async def read_again(self, tp: TP, offset: int) -> None:
        """Hand out `tp` from `offset` again (a stalled partition: stream_processors.liveness);
        messages fetched before the seek cannot move the read position past it."""
        self._rewound_at.pop(tp, None)
        self._read_offset.rewind(tp, offset)
        await self._seek(tp, offset)
        self.resume_partitions({tp})

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        committed = self._committed_offset.get(tp)
        if committed is not None and offset_from == committed + 1:
            # After Faust's seek the read offset is the committed one, i.e. the next to read,
            # yet its drain loop takes it as the last read: the committed offset is skipped
            # too (at worst it is read twice).
            offset_from = committed
        reads = self._read_offset
        pending = tp in reads.rewinds
        if pending and offset_to <= self._rewound_at.get(tp, -1):
            # A fresh fetch after the seek still starts past the target: it is gone.
            log.warning("%s[%d]: offsets %d-%d cannot be read again (deleted?); skipping them",
                        tp.topic, tp.partition, offset_from, offset_to - 1)  # fmt: skip
            reads.rewinds.pop(tp, None)
            self._give_up(tp, offset_from, offset_to)
            return
        if not pending:
            log.warning("%s[%d]: the fetcher skipped offsets %d-%d; reading them again",
                        tp.topic, tp.partition, offset_from, offset_to - 1)  # fmt: skip
        self._rewound_at[tp] = offset_to
        reads.rewind(tp, offset_from)
        await self._seek(tp, offset_from)

    def _give_up(self, tp: TP, offset_from: int, offset_to: int) -> None:
        """Count offsets offset_from..offset_to-1 as processed (Faust's gap). Unlike Faust's
        own `_add_gap`, the message at offset_to (being handed out now) is left to its ack,
        and a gap may start at the committed offset itself."""
        committed = self._committed_offset[tp]
        start = offset_from if committed is None else max(offset_from, committed)
        self.written.gone(tp, start, offset_to)
        if start < offset_to:
            gap = self._gap[tp]
            gap.addi(start, offset_to)
            gap.merge_overlaps()

    def unfetched(self, topics: Collection[str]) -> set[TP]:
        """Assigned partitions of `topics` that Faust neither fetches nor has paused.

        Faust takes a partition out of fetching while its stream buffer is under pressure and
        puts it back when the buffer drains; a rebalance in between can lose the "put back",
        and the partition then waits for the next rebalance (seen under load in
        tests/integration/stream_processors/test_stream_workers.py).
        """
        active = self._active_partitions or set()
        return {
            tp
            for tp in self.assignment()
            if tp.topic in topics and tp not in active and tp not in self._paused_partitions
        }

    async def _drain_messages(self, fetcher: Any) -> None:  # pragma: no cover - worker loop
        """faust-streaming 0.15.3's `Consumer._drain_messages` (faust/transport/consumer.py),
        unchanged but for one line: the message callback runs by hand first (`drive`), and
        only a callback that waits goes through `wait_first` as in Faust. Faust's own
        version is fingerprinted in tests/unit/stream_processors/test_stream_consumer.py:
        an upgrade that changes it fails there, and this copy is to be compared again."""
        callback = self.callback
        getmany = self.getmany
        consumer_should_stop = cast(Any, self)._stopped.is_set
        fetcher_should_stop = fetcher._stopped.is_set
        get_read_offset = self._read_offset.__getitem__
        set_read_offset = self._read_offset.__setitem__
        flag_consumer_fetching = CONSUMER_FETCHING
        set_flag = self.diag.set_flag
        unset_flag = self.diag.unset_flag
        commit_every = self._commit_every
        acks_enabled_for = self.app.topics.acks_enabled_for
        directs = self.direct
        yield_every = 100
        num_since_yield = 0
        sleep = asyncio.sleep
        try:
            while not (consumer_should_stop() or fetcher_should_stop()):
                set_flag(flag_consumer_fetching)
                ait = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    async for tp, message in ait:
                        num_since_yield += 1
                        if num_since_yield > yield_every:
                            await sleep(0)
                            num_since_yield = 0
                        offset = message.offset
                        r_offset = get_read_offset(tp)
                        if r_offset is None or offset >= r_offset:
                            gap = offset - (r_offset or 0)
                            if gap > 1 and r_offset and acks_enabled_for(message.topic):
                                await self._add_gap(tp, r_offset + 1, offset)
                            if commit_every is not None and self._n_acked >= commit_every:
                                self._n_acked = 0
                                await self.commit()
                            direct = directs.get(message.topic)
                            if direct is not None:  # a sink topic read past Faust's streams
                                if not direct.room.is_set():
                                    await self.wait_first(
                                        direct.room.wait(), self.suspend_flow.wait()
                                    )
                                if not self.suspend_flow.is_set():
                                    direct.put(message)
                            elif self.suspend_flow.is_set():
                                await self.wait_first(callback(message), self.suspend_flow.wait())
                            else:
                                rest = drive(callback(message))
                                if rest is not None:
                                    await self.wait_first(rest, self.suspend_flow.wait())
                            set_read_offset(tp, offset)
                        else:
                            self.log.dev("DROPPED MESSAGE ROFF %r: k=%r v=%r", offset,
                                         message.key, message.value)  # fmt: skip
                    unset_flag(flag_consumer_fetching)
        except self.consumer_stopped_errors:
            if self.transport.app.should_stop:
                self.log.info("Broker stopped consumer, shutting down...")
                return
            raise
        except asyncio.CancelledError:
            if self.transport.app.should_stop:
                self.log.info("Consumer shutting down for user cancel.")
                return
            raise
        except Exception as exc:
            self.log.exception("Drain messages raised: %r", exc)
            raise
        finally:
            unset_flag(flag_consumer_fetching)


async def take_batches(  # pragma: no cover - worker loop (tests/integration/stream_processors)
    stream: Any, max_: int, within: float, idle: float
) -> AsyncGenerator[list[Any], None]:
    """faust-streaming 0.15.3's `Stream.take_events` (faust/streams.py), with one change: a
    batch is handed over as soon as the stream has been quiet for `idle` seconds, not only
    when `max_` events came or `within` seconds passed. A lone event (a run's epoch) waits
    `idle` instead of up to `within` (the live latency), while a busy stream keeps filling
    its batch up to `max_` or `within` (the ingest rate). Acks are Faust's: the events of a
    batch are acked when the agent asks for the next one, after its rows are committed.
    Faust's own version is fingerprinted in tests/unit/stream_processors/
    test_stream_consumer.py: an upgrade that changes it fails there."""
    buffer: list[Any] = []
    events: list[Any] = []
    added = asyncio.Event()  # set by every event put in the buffer
    buffer_full = asyncio.Event()
    buffer_consumed = asyncio.Event()
    stream_enable_acks: bool = stream.enable_acks
    buffer_consuming: asyncio.Future[None] | None = None
    loop = asyncio.get_running_loop()
    channel_it = aiter(stream.channel)

    async def add_to_buffer(value: Any) -> Any:
        try:
            nonlocal buffer_consuming
            if buffer_consuming is not None:
                try:
                    await buffer_consuming
                finally:
                    buffer_consuming = None
            buffer.append(value)
            event = stream.current_event
            if event is None:
                raise RuntimeError("Take buffer found current_event is None")
            events.append(event)
            added.set()
            if len(buffer) >= max_:
                buffer_full.set()
                buffer_consumed.clear()
                await stream.wait(buffer_consumed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to take buffer: %r", exc)
            await stream.crash(exc)
        return value

    def stopped_or(event: asyncio.Event, timeout: float) -> Awaitable[bool]:
        return cast(Awaitable[bool], stream.wait_for_stopped(event, timeout=timeout))

    stream.enable_acks = False
    stream.add_processor(add_to_buffer)
    stream._enable_passive(channel_it)
    try:
        while not stream.should_stop:
            if not buffer:  # wait for a first event
                added.clear()
                await stream.wait_for_stopped(added, timeout=within)
            if buffer:
                await until_quiet(added, buffer.__len__, max_, within, idle, stopped_or)
                buffer_consuming = loop.create_future()
                try:
                    yield list(events)
                finally:
                    buffer.clear()
                    for event in events:
                        await stream.ack(event)
                    events.clear()
                    if not buffer_consuming.done():
                        buffer_consuming.set_result(None)
                    buffer_full.clear()
                    buffer_consumed.set()
    finally:
        stream.enable_acks = stream_enable_acks
        stream._processors.remove(add_to_buffer)
