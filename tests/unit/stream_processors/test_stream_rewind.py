"""RewindingConsumer: offsets the fetcher skipped are read again, never committed past.

The fetcher and Faust's drain loop are played here as faust-streaming 0.15 runs them
(transport/consumer.py `_drain_messages`): a message below the read offset is dropped; one
more than one past it first reports a gap (`_add_gap(tp, read + 1, offset)`), is then handed
to the agents, and becomes the read offset.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

import pytest
from faust.types import TP
from intervaltree import IntervalTree

from stream_processors.consumer import ReadOffsets, RewindingConsumer, Written

pytestmark = pytest.mark.unit
TOPIC = TP("nnt.epochs", 2)


class Fetcher:
    """A partition log read from a position; `seek` moves it unless the offset is deleted."""

    def __init__(self, end: int, deleted_below: int = 0) -> None:
        self.position, self.end, self.deleted_below = 0, end, deleted_below

    def seek(self, offset: int) -> None:
        self.position = max(offset, self.deleted_below)

    def batch(self, size: int = 3) -> list[int]:
        out = list(range(self.position, min(self.position + size, self.end)))
        self.position += len(out)
        return out


def consumer(fetcher: Fetcher) -> RewindingConsumer:
    c = RewindingConsumer.__new__(RewindingConsumer)  # no broker: only the offset logic
    c._read_offset = ReadOffsets()
    c._rewound_at = {}
    c._committed_offset = defaultdict(lambda: None)
    c._gap = defaultdict(IntervalTree)
    c._acked = defaultdict(list)
    c._acked_index = defaultdict(set)
    c.written = Written()

    async def seek(tp: TP, offset: int) -> None:
        fetcher.seek(offset)

    c._seek = seek  # type: ignore[method-assign]
    return c


async def drain(c: RewindingConsumer, fetcher: Fetcher, rounds: int = 20) -> list[int]:
    """Faust's drain loop over `rounds` fetches; returns the offsets handed to agents."""
    handed: list[int] = []
    for _ in range(rounds):
        for offset in fetcher.batch():
            read = c._read_offset[TOPIC]
            if read is None or offset >= read:
                if offset - (read or 0) > 1 and read:
                    await c._add_gap(TOPIC, read + 1, offset)
                handed.append(offset)
                c._read_offset[TOPIC] = offset
    return handed


def test_it_reads_again_what_a_stale_fetch_position_skipped() -> None:
    fetcher = Fetcher(end=16)
    c = consumer(fetcher)
    fetcher.position = 1
    handed = asyncio.run(drain(c, fetcher, rounds=1))  # 1, 2, 3
    fetcher.position = 9  # the fetcher resumes past 4-8 (seen after a table recovery)
    handed += asyncio.run(drain(c, fetcher))
    assert set(range(1, 16)) <= set(handed), "a skipped offset was never handed to an agent"
    assert c._read_offset[TOPIC] == 15
    assert not c._gap[TOPIC], "nothing may be counted as processed without being read"


def test_it_falls_back_to_a_gap_when_the_skipped_offsets_are_gone() -> None:
    fetcher = Fetcher(end=16, deleted_below=9)  # retention removed 4-8
    c = consumer(fetcher)
    c._read_offset[TOPIC] = 3
    fetcher.position = 9
    handed = asyncio.run(drain(c, fetcher))
    assert handed[-1] == 15 and c._read_offset[TOPIC] == 15, "the partition must keep moving"
    assert sorted(c._gap[TOPIC])[0].begin == 4


def test_it_never_commits_past_one_offset_not_yet_acked() -> None:
    c = consumer(Fetcher(end=16))
    c._committed_offset[TOPIC] = 7  # the next offset to read
    c._acked[TOPIC] += [8, 9]
    c._acked_index[TOPIC] |= {8, 9}
    assert c._new_offset(TOPIC) is None, "offset 7 was never acked: committing 10 loses it"
    c._acked[TOPIC].append(7)
    c._acked_index[TOPIC].add(7)
    assert c._new_offset(TOPIC) == 10


def test_a_given_up_gap_may_start_at_the_committed_offset() -> None:
    fetcher = Fetcher(end=16, deleted_below=9)
    c = consumer(fetcher)
    c._committed_offset[TOPIC] = 4
    c._read_offset[TOPIC] = 3
    fetcher.position = 9
    asyncio.run(drain(c, fetcher))
    c._acked[TOPIC] += list(range(9, 16))
    assert c._new_offset(TOPIC) == 16, "the deleted offsets 4-8 must not hold commits forever"


def test_a_seek_to_the_committed_offsets_drops_the_rewinds_pending() -> None:
    fetcher = Fetcher(end=40)
    c = consumer(fetcher)
    c._read_offset.rewind(TOPIC, 5)
    c._rewound_at[TOPIC] = 9

    async def seek_to_committed() -> dict[TP, int]:
        fetcher.seek(20)
        return {TOPIC: 20}

    c.seek_to_committed = seek_to_committed  # type: ignore[method-assign]
    asyncio.run(c.perform_seek())
    handed = asyncio.run(drain(c, fetcher, rounds=3))
    assert handed == list(range(20, 29)) and c._read_offset[TOPIC] == 28
    assert not c._gap[TOPIC]


def test_a_revoked_partition_forgets_its_pending_rewind() -> None:
    reads = ReadOffsets()
    reads.rewind(TOPIC, 5)
    reads.pop(TOPIC, None)
    reads[TOPIC] = 30
    assert reads[TOPIC] == 30


def test_a_sink_partition_commits_only_what_is_written() -> None:
    c = consumer(Fetcher(end=40))
    c.written.topics.add(TOPIC.topic)
    c._committed_offset[TOPIC] = 10
    c._acked[TOPIC] += list(range(10, 20))  # Faust acked ten events...
    for offset in (10, 11, 12, 14, 15):  # ...whose rows are only partly committed
        c.written.add(TOPIC, offset)
    assert c._new_offset(TOPIC) == 13, "offset 13 has no row: the commit must stop before it"
    c._committed_offset[TOPIC] = 13
    assert c._new_offset(TOPIC) is None
    c.written.add(TOPIC, 13)
    assert c._new_offset(TOPIC) == 16
    c._committed_offset[TOPIC] = None  # newly assigned, its committed offset not known yet
    assert c._new_offset(TOPIC) is None, "without a baseline no offset is provably written"
    c._committed_offset[TOPIC] = 13
    c.written.add(TOPIC, 99)  # another partition's or a stray offset changes nothing
    c.written.forget([TOPIC])
    c._committed_offset[TOPIC] = 16
    assert c._new_offset(TOPIC) is None


def test_other_topics_keep_fausts_acks() -> None:
    c = consumer(Fetcher(end=40))
    c._committed_offset[TOPIC] = 10
    c._acked[TOPIC] += [10, 11, 12]
    c._acked_index[TOPIC] |= {10, 11, 12}
    assert c._new_offset(TOPIC) == 13


def test_a_sink_partition_commits_past_offsets_retention_deleted() -> None:
    fetcher = Fetcher(end=16, deleted_below=9)  # 4-8 were deleted before anyone read them
    c = consumer(fetcher)
    c.written.topics.add(TOPIC.topic)
    c._committed_offset[TOPIC] = 4
    c._read_offset[TOPIC] = 3
    fetcher.position = 9
    for offset in asyncio.run(drain(c, fetcher)):
        c.written.add(TOPIC, offset)  # every message handed out gets its rows
    assert c._new_offset(TOPIC) == 16, "a deleted range must not hold the commit forever"


def test_a_jump_right_after_a_seek_reads_the_committed_offset_again_too() -> None:
    fetcher = Fetcher(end=40)
    c = consumer(fetcher)
    c._committed_offset[TOPIC] = 20
    c._read_offset[TOPIC] = 20  # Faust's seek: the read offset is the next one to read
    fetcher.position = 25  # a batch fetched before the seek arrives first
    handed = asyncio.run(drain(c, fetcher, rounds=6))
    assert set(range(20, 25)) <= set(handed), "offset 20 (the committed one) was never read"
