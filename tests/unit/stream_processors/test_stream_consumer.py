"""stream_processors/consumer.py: the drain loop's by-hand callback (`drive`), and the
fingerprint of the Faust code it copies."""

from __future__ import annotations

import asyncio
import hashlib
import inspect
from types import SimpleNamespace

import pytest
from faust.types import TP

from stream_processors.consumer import Direct, Written, drive

pytestmark = pytest.mark.unit

# sha256 of faust-streaming 0.15.3's Consumer._drain_messages source. If this fails, Faust
# changed its drain loop: compare RewindingConsumer._drain_messages with the new one, carry
# the changes over, then update the fingerprint.
DRAIN_SHA256 = "44a2500309e83c630493f6828af50166ec8d96a0b3e4fb2bab735f704ae93417"


# sha256 of faust-streaming 0.15.3's Stream.take_events source, which take_batches copies
# (with one change: a batch is handed over once the stream is quiet for `idle` seconds).
TAKE_EVENTS_SHA256 = "607d48aead118ba8ea868718a0df87de1c5fcecd10ec542c659b448796728e08"


def test_fausts_take_events_is_the_one_copied() -> None:
    from faust.streams import Stream

    take_events = getattr(Stream.take_events, "__wrapped__", Stream.take_events)
    source = inspect.getsource(take_events)
    assert hashlib.sha256(source.encode()).hexdigest() == TAKE_EVENTS_SHA256


def test_fausts_drain_loop_is_the_one_copied() -> None:
    from faust.transport.consumer import Consumer

    source = inspect.getsource(Consumer._drain_messages)
    assert hashlib.sha256(source.encode()).hexdigest() == DRAIN_SHA256


def test_a_callback_that_does_not_wait_runs_to_its_end_by_hand() -> None:
    seen: list[int] = []

    async def callback() -> None:
        seen.append(1)

    assert drive(callback()) is None and seen == [1]


def test_a_callback_that_waits_is_finished_by_the_awaitable() -> None:
    async def main() -> list[str]:
        gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        seen: list[str] = []

        async def callback() -> str:
            seen.append("before")
            seen.append(await gate)
            await asyncio.sleep(0)
            seen.append("after")
            return "done"

        rest = drive(callback())
        assert rest is not None and seen == ["before"]
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        gate.set_result("value")
        assert await task == "done"
        return seen

    assert asyncio.run(main()) == ["before", "value", "after"]


def test_errors_and_cancellation_reach_the_callback() -> None:
    async def main() -> list[str]:
        seen: list[str] = []
        loop = asyncio.get_running_loop()

        async def failing() -> None:
            await asyncio.sleep(0)
            raise RuntimeError("boom")

        rest = drive(failing())
        assert rest is not None
        with pytest.raises(RuntimeError, match="boom"):
            await rest

        async def waiting() -> None:
            try:
                await loop.create_future()
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

        rest = drive(waiting())
        assert rest is not None
        task = asyncio.ensure_future(rest)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen

    assert asyncio.run(main()) == ["cancelled"]


def test_an_error_before_the_first_wait_is_raised_at_once() -> None:
    async def callback() -> None:
        raise ValueError("bad message")

    with pytest.raises(ValueError, match="bad message"):
        drive(callback())


def _message(partition: int, offset: int) -> SimpleNamespace:
    return SimpleNamespace(tp=TP("nnt.epochs", partition), offset=offset)


def test_a_direct_topic_hands_over_what_came_once_the_stream_is_quiet() -> None:
    async def main() -> list[int]:
        direct = Direct(maxsize=10)
        for offset in range(3):
            direct.put(_message(0, offset))
        batch = await direct.take(100, within=5.0, idle=0.01)
        return [d.message.offset for d in batch]

    assert asyncio.run(main()) == [0, 1, 2]


def test_a_direct_topic_gives_at_most_max_and_holds_the_drain_loop_when_full() -> None:
    async def main() -> tuple[list[int], bool, bool, list[int]]:
        direct = Direct(maxsize=4)
        for offset in range(5):
            direct.put(_message(0, offset))
        full = not direct.room.is_set()
        first = await direct.take(3, within=5.0, idle=0.01)
        rest = await direct.take(3, within=5.0, idle=0.01)
        return (
            [d.message.offset for d in first],
            full,
            direct.room.is_set(),
            [d.message.offset for d in rest],
        )

    first, full, room, rest = asyncio.run(main())
    assert full and room
    assert first == [0, 1, 2] and rest == [3, 4]


def test_a_direct_topic_forgets_the_messages_of_revoked_partitions() -> None:
    async def main() -> list[tuple[int, int]]:
        direct = Direct(maxsize=3)
        for partition, offset in ((0, 0), (1, 0), (0, 1)):
            direct.put(_message(partition, offset))
        direct.drop({TP("nnt.epochs", 0)})
        assert direct.room.is_set()
        batch = await direct.take(10, within=5.0, idle=0.01)
        return [(d.message.tp.partition, d.message.offset) for d in batch]

    assert asyncio.run(main()) == [(1, 0)]


def test_a_direct_topic_waits_for_a_first_message() -> None:
    async def main() -> list[int]:
        direct = Direct(maxsize=10)
        task = asyncio.ensure_future(direct.take(10, within=5.0, idle=0.01))
        await asyncio.sleep(0.05)
        assert not task.done()
        direct.put(_message(2, 7))
        return [d.message.offset for d in await task]

    assert asyncio.run(main()) == [7]


def test_written_offsets_are_offered_for_a_commit() -> None:
    written = Written()
    written.topics.add("nnt.epochs")
    written.add(TP("nnt.epochs", 1), 5)
    written.add(TP("other", 0), 1)
    assert written.pending() == {TP("nnt.epochs", 1)}
    assert written.mark(TP("nnt.epochs", 1), 5) == 6
    assert written.pending() == set()
