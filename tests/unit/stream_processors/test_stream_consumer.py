"""stream_processors/consumer.py: the drain loop's by-hand callback (`drive`), and the
fingerprint of the Faust code it copies."""

from __future__ import annotations

import asyncio
import hashlib
import inspect

import pytest

from stream_processors.consumer import drive

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
