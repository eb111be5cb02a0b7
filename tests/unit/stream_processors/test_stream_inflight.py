"""One write in flight (stream_processors.inflight): writes in order, one at a time, what
follows each in order, and the next write not waiting for what follows the previous one."""

from __future__ import annotations

import asyncio

import pytest

from stream_processors.inflight import OneInFlight

pytestmark = pytest.mark.unit


def test_writes_run_one_at_a_time_and_what_follows_runs_in_order() -> None:
    log: list[str] = []
    slow_publish = asyncio.Event()

    async def write(n: int, delay: float) -> int:
        log.append(f"write {n} starts")
        await asyncio.sleep(delay)
        log.append(f"write {n} committed")
        return n

    async def publish(n: int) -> None:
        if n == 1:  # the first batch's live points take long: the next write goes on
            await slow_publish.wait()
        log.append(f"publish {n}")

    async def main() -> None:
        writes = OneInFlight()
        await writes.submit(write(1, 0.02), publish)
        await writes.submit(write(2, 0.01), publish)  # waits for write 1's COMMIT only
        await asyncio.sleep(0)
        assert log == ["write 1 starts", "write 1 committed", "write 2 starts"]
        await writes.submit(write(3, 0.0), publish)
        await asyncio.sleep(0.01)
        slow_publish.set()
        await writes.drain()

    asyncio.run(main())
    assert log == [
        "write 1 starts",
        "write 1 committed",
        "write 2 starts",
        "write 2 committed",
        "write 3 starts",
        "write 3 committed",
        "publish 1",
        "publish 2",
        "publish 3",
    ]


def test_a_failed_write_is_raised_to_the_agent() -> None:
    async def broken() -> None:
        raise RuntimeError("bug")

    async def main() -> None:
        writes = OneInFlight()
        await writes.submit(broken())
        with pytest.raises(RuntimeError, match="bug"):
            await writes.submit(asyncio.sleep(0))
        with pytest.raises(RuntimeError, match="bug"):
            await writes.drain()

    asyncio.run(main())


def test_a_failed_follow_up_is_raised_to_the_agent_by_a_later_submit() -> None:
    async def write() -> int:
        return 1

    async def publish(_: int) -> None:
        raise RuntimeError("broker gone")

    async def main() -> None:
        writes = OneInFlight()
        await writes.submit(write(), publish)
        await asyncio.sleep(0.01)  # the write committed and its follow-up failed
        with pytest.raises(RuntimeError, match="broker gone"):
            await writes.submit(write(), publish)

    asyncio.run(main())
