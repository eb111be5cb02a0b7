"""PartitionWatch: which sink partitions a worker must move again, check by check."""

from __future__ import annotations

import pytest
from faust.types import TP

from stream_processors.liveness import PartitionWatch

pytestmark = pytest.mark.unit
A, B = TP("nnt.epochs", 0), TP("nnt.epochs", 1)


def test_it_puts_back_a_partition_left_out_of_fetching_for_two_checks() -> None:
    watch = PartitionWatch(stall_checks=3)
    assert watch.check({A}, {A: 5, B: 5}, {A: 9, B: 6}).resume == set()
    assert watch.check({A}, {A: 5, B: 5}, {A: 9, B: 6}).resume == {A}
    assert watch.check(set(), {A: 9, B: 5}, {A: 10, B: 6}).resume == set()


def test_it_seeks_a_partition_that_stands_still_while_messages_wait() -> None:
    watch = PartitionWatch(stall_checks=3)
    ends = {A: 100, B: 6}  # B is read to its end: standing still is right
    assert watch.check(set(), {A: 40, B: 5}, ends).seek == set()
    assert watch.check(set(), {A: 40, B: 5}, ends).seek == set()
    assert watch.check(set(), {A: 40, B: 5}, ends).seek == {A}
    # Counted again from the seek; a partition that moves is never sought.
    assert watch.check(set(), {A: 40, B: 5}, ends).seek == set()
    for read in (41, 42, 43, 44):
        assert watch.check(set(), {A: read, B: 5}, ends).seek == set()


def test_it_forgets_everything_on_a_rebalance() -> None:
    watch = PartitionWatch(stall_checks=2)
    watch.check({A}, {A: None}, {A: 3})
    watch.reset()
    assert watch.check({A}, {A: None}, {A: 3}).resume == set()
    assert watch.check({A}, {A: None}, {A: 3}).seek == {A}


def test_it_reads_again_what_was_fetched_but_never_processed() -> None:
    # Read to the log end, yet the committed offset stays behind: the messages never reached
    # an agent. Sought back once the sink is idle and nothing moved for the checks.
    watch = PartitionWatch(stall_checks=2)
    reads, ends, committed = {A: 99, B: 5}, {A: 100, B: 6}, {A: 60, B: 6}
    assert watch.check(set(), reads, ends, committed).seek == set()
    assert watch.check(set(), reads, ends, committed).seek == {A}


def test_it_never_seeks_while_a_write_is_in_flight_or_the_commit_moves() -> None:
    watch = PartitionWatch(stall_checks=2)
    reads, ends = {A: 99}, {A: 100}
    for _ in range(5):  # the sink waits for the database: not a stall
        assert watch.check(set(), reads, ends, {A: 60}, idle=False).seek == set()
    for done in (61, 62, 63, 64):  # slow but moving
        assert watch.check(set(), reads, ends, {A: done}).seek == set()


def test_it_reads_again_when_reads_go_on_but_the_commit_stands_still() -> None:
    # An offset never written holds the commit (stream_processors.written) while later
    # messages keep arriving: the read offset moves, the committed one does not.
    watch = PartitionWatch(stall_checks=3)
    ends, committed = {A: 500}, {A: 60}
    assert watch.check(set(), {A: 100}, ends, committed).seek == set()
    assert watch.check(set(), {A: 150}, ends, committed, idle=False).seek == set()
    assert watch.check(set(), {A: 200}, ends, committed).seek == set()
    assert watch.check(set(), {A: 250}, ends, committed).seek == {A}
