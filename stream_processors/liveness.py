"""Partition liveness: a sink partition that stops moving while messages wait is moved again.

Under load, faust-streaming 0.15 has been seen (tests/integration/stream_processors/
test_stream_workers.py and tests/integration/faults/, about one rebalance in ten on a loaded
2-core machine) to leave a partition it was handed unprocessed until the next rebalance:
out of its fetch set (flow control lost the "put back" of a full stream buffer), with a read
position that no longer moves, or with messages fetched (the read offset at the log end) that
never reached an agent, so the committed offset stays behind for good. A worker checks every
NNT_PARTITION_CHECK_S seconds: a partition out of the fetch set for two checks in a row is put
back; one whose committed offset (or, before any commit, its read offset) has stood still for
NNT_STALL_CHECKS checks while messages past it wait and the sink was idle at the last check (no
write in flight, so the database is not what it waits for), is sought back to its committed
offset. What is read
twice is harmless: writes ignore existing keys. Each such move is logged with the consumer's
state, so the cause can be read from the worker's log.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from faust.types import TP


@dataclass
class Moves:
    """What one check decided."""

    resume: set[TP] = field(default_factory=set)
    seek: set[TP] = field(default_factory=set)


@dataclass
class PartitionWatch:
    """Remembers each partition's read offset across checks (pure: the caller asks Faust)."""

    stall_checks: int
    left_out: set[TP] = field(default_factory=set)
    still: dict[TP, tuple[tuple[int | None, int | None], int]] = field(default_factory=dict)

    def reset(self) -> None:
        """Forget everything (a rebalance or a recovery is under way)."""
        self.left_out.clear()
        self.still.clear()

    def check(
        self,
        unfetched: set[TP],
        reads: Mapping[TP, int | None],
        ends: Mapping[TP, int],
        committed: Mapping[TP, int | None] | None = None,
        idle: bool = True,
    ) -> Moves:
        """`unfetched`: assigned but not fetched; `reads`: last offset handed to an agent per
        assigned partition; `ends`: the log end offset of each; `committed`: the next offset
        the group would read after a restart; `idle`: no write is in flight (a partition that
        waits for the database is not stalled)."""
        committed = committed or {}
        moves = Moves(resume=unfetched & self.left_out)
        self.left_out = unfetched - moves.resume
        still: dict[TP, tuple[tuple[int | None, int | None], int]] = {}
        for tp, read in reads.items():
            done = committed.get(tp)
            if done is None:
                done = read + 1 if read is not None else 0
            waiting = ends.get(tp, 0) > done
            # With a committed offset, only it counts: reads may go on (past an offset never
            # written, see stream_processors.written) while the commit cannot move.
            position = (None, committed[tp]) if committed.get(tp) is not None else (read, None)
            before = self.still.get(tp)
            count = before[1] if before is not None and before[0] == position else 0
            if not waiting:
                count = 0
            elif idle:  # busy: the database is what it waits for, neither a stall nor progress
                count += 1
                if count >= self.stall_checks:
                    moves.seek.add(tp)
                    count = 0
            still[tp] = (position, count)
        self.still = still
        return moves


def state_lines(app: Any, topics: Collection[str]) -> list[str]:
    """The consumer's view of each assigned partition of `topics`, for the log."""
    c = app.consumer
    lines = [f"flow_active={c.flow_active} rebalancing={app.rebalancing} "
             f"in_recovery={app.in_recovery}"]  # fmt: skip
    for tp in sorted(c.assignment()):
        if tp.topic in topics:
            lines.append(
                f"{tp.topic}[{tp.partition}] active={tp in (c._active_partitions or set())} "
                f"paused={tp in c._paused_partitions} buffered={tp in c._buffered_partitions} "
                f"read={c._read_offset.get(tp)} committed={c._committed_offset.get(tp)} "
                f"acked={len(c._acked.get(tp, []))} highwater={c.highwater(tp)}"
            )
    for agent in app.agents.values():
        for actor in agent._actors:
            queue = getattr(getattr(actor.stream, "channel", None), "queue", None)
            lines.append(f"{agent.name}: queue={queue.qsize() if queue is not None else None}")
    return lines
