"""One write in flight per agent (stream_processors.agents): pure asyncio, no Faust."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class OneInFlight:
    """An agent's writes, one at a time, each going on while the agent reads and decodes its
    next batch: the worker's CPU and PostgreSQL's overlap instead of taking turns. What
    follows a write (`then`: live points, tag contributions) runs once it committed, in
    batch order, while the next write is already in flight.

    Safe because a sink partition's commit follows rows, not Faust's acks
    (stream_processors.consumer.Written): the batch acked when the agent asks for the next
    one is committed to Kafka only once its write has marked it done. Writes still happen
    in batch order (the next starts after the previous one's COMMIT)."""

    def __init__(self) -> None:
        self.written: asyncio.Future[object] | None = None  # the write in flight
        self.task: asyncio.Future[None] | None = None  # it and all that follows it

    async def submit(
        self, write: Awaitable[T], then: Callable[[T], Awaitable[None]] | None = None
    ) -> None:
        """Wait for the write in flight to commit, then start `write`, and `then` with its
        result once it committed and the previous `then` ran. The error of the write in
        flight, or of a `then` that already failed, is raised here (a later `then` never
        runs after a failed one: it is raised again from there)."""
        try:
            if self.written is not None:
                await self.written
            if self.task is not None and self.task.done():
                self.task.result()
        except BaseException:
            if asyncio.iscoroutine(write):
                write.close()  # never started
            raise
        written = asyncio.ensure_future(write)
        self.written = written
        self.task = asyncio.ensure_future(self._follow(written, self.task, then))

    @staticmethod
    async def _follow(
        written: asyncio.Future[T],
        previous: asyncio.Future[None] | None,
        then: Callable[[T], Awaitable[None]] | None,
    ) -> None:
        result = await written
        if previous is not None:
            await previous
        if then is not None:
            await then(result)

    async def drain(self) -> None:
        """Wait for the write in flight and what follows it, if any."""
        task, self.task, self.written = self.task, None, None
        if task is not None:
            await task
