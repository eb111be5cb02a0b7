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
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

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
        target = self.rewinds.get(tp)
        if target is not None and offset is not None:
            if offset > target:
                return
            if offset == target:
                del self.rewinds[tp]  # the first skipped message has been read again
        super().__setitem__(tp, offset)

    def rewind(self, tp: TP, target: int) -> None:
        """Hand out `target` next: the read offset goes just before it, whatever was read."""
        self.rewinds[tp] = target
        super().__setitem__(tp, target - 1)


class RewindingConsumer(AIOKafkaDriverConsumer):
    """The aiokafka driver consumer with skipped offsets read again (see the module)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._read_offset = ReadOffsets()
        self._rewound_at: dict[TP, int] = {}

    async def seek(self, partition: TP, offset: int) -> None:
        """Faust's own seeks (assignment, recovery) replace any pending rewind."""
        self._read_offset.rewinds.pop(partition, None)
        await super().seek(partition, offset)

    async def read_again(self, tp: TP, offset: int) -> None:
        """Hand out `tp` from `offset` again (a stalled partition: stream_processors.liveness);
        messages fetched before the seek cannot move the read position past it."""
        self._rewound_at.pop(tp, None)
        self._read_offset.rewind(tp, offset)
        await self._seek(tp, offset)
        self.resume_partitions({tp})

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        reads = self._read_offset
        pending = tp in reads.rewinds
        if pending and offset_to <= self._rewound_at.get(tp, -1):
            # A fresh fetch after the seek still starts past the target: it is gone.
            log.warning("%s[%d]: offsets %d-%d cannot be read again (deleted?); skipping them",
                        tp.topic, tp.partition, offset_from, offset_to - 1)  # fmt: skip
            reads.rewinds.pop(tp, None)
            await super()._add_gap(tp, offset_from, offset_to)
            return
        if not pending:
            log.warning("%s[%d]: the fetcher skipped offsets %d-%d; reading them again",
                        tp.topic, tp.partition, offset_from, offset_to - 1)  # fmt: skip
        self._rewound_at[tp] = offset_to
        reads.rewind(tp, offset_from)
        await self._seek(tp, offset_from)

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
