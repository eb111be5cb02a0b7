"""Coalescing and rate limiting of live points."""

from __future__ import annotations

import uuid

import pytest

from schemas.live import LivePoint
from stream_processors.throttle import LiveThrottle

pytestmark = pytest.mark.unit


def point(epoch: int, loss: float = 1.0) -> LivePoint:
    return LivePoint(epoch=epoch, values={"loss": loss})


def test_it_releases_at_most_once_per_interval() -> None:
    throttle, sid = LiveThrottle(0.1), uuid.uuid4()
    throttle.add(sid, [point(1)])
    assert [p.epoch for _, pts in throttle.due(10.0) for p in pts] == [1]
    throttle.add(sid, [point(2)])
    throttle.add(sid, [point(3)])
    assert throttle.due(10.05) == []
    assert [p.epoch for _, pts in throttle.due(10.1) for p in pts] == [2, 3]


def test_it_keeps_only_new_points_in_epoch_order_last_write_wins() -> None:
    throttle, sid = LiveThrottle(0.1), uuid.uuid4()
    throttle.add(sid, [point(3), point(1, 5.0)])
    throttle.add(sid, [point(1, 7.0)])
    [(got_sid, points)] = throttle.due(1.0)
    assert got_sid == sid
    assert [(p.epoch, p.values["loss"]) for p in points] == [(1, 7.0), (3, 1.0)]
    assert throttle.due(5.0) == [] and throttle.pending() == 0


def test_it_throttles_each_simulation_separately() -> None:
    throttle, a, b = LiveThrottle(0.1), uuid.uuid4(), uuid.uuid4()
    throttle.add(a, [point(1)])
    throttle.due(1.0)
    throttle.add(a, [point(2)])
    throttle.add(b, [point(1)])
    assert [sid for sid, _ in throttle.due(1.01)] == [b]
    assert [sid for sid, _ in throttle.due(1.1)] == [a]


def test_it_bounds_messages_whatever_the_input_rate() -> None:
    throttle, sid = LiveThrottle(0.1), uuid.uuid4()
    sent = 0
    for i in range(1000):  # 1000 epochs over one second of fake time
        throttle.add(sid, [point(i)])
        sent += len(throttle.due(i / 1000))
    assert sent <= 11
