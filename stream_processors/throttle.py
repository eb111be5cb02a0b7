"""Per-simulation coalescing of live points: at most one nnt.live message per interval."""

from __future__ import annotations

import uuid
from collections.abc import Hashable, Iterable
from typing import Any

from schemas.common import built
from schemas.epochs import EpochEvent
from schemas.live import LivePoint


def live_point(event: EpochEvent) -> LivePoint:
    """What a chart draws of one logged epoch (built without validation: the event's points
    are already checked floats; once per event on the ingest path)."""
    return built(LivePoint, {"epoch": event.epoch, "values": event.points(), "at": event.at})


class LiveThrottle:
    """Collects new points per simulation and releases them no more often than `interval`."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[uuid.UUID, dict[int, LivePoint]] = {}
        self._last: dict[uuid.UUID, float] = {}

    def add(self, simulation_id: uuid.UUID, points: Iterable[LivePoint]) -> None:
        """Queue points; a later point of the same epoch replaces the earlier one."""
        pending = self._pending.setdefault(simulation_id, {})
        for point in points:
            pending[point.epoch] = point

    def due(self, now: float) -> list[tuple[uuid.UUID, list[LivePoint]]]:
        """Pop the simulations whose interval has passed, with their points in epoch order."""
        ready = [
            sid
            for sid in self._pending
            if now - self._last.get(sid, float("-inf")) >= self.interval - 1e-6
        ]
        out = []
        for sid in ready:
            points = self._pending.pop(sid)
            self._last[sid] = now
            out.append((sid, [points[e] for e in sorted(points)]))
        self._forget(now)
        return out

    def pending(self) -> int:
        """How many simulations have points waiting."""
        return len(self._pending)

    def _forget(self, now: float) -> None:
        """Drop send times too old to matter, so memory follows active simulations only."""
        stale = [
            sid
            for sid, t in self._last.items()
            if now - t > 10 * self.interval + 60 and sid not in self._pending
        ]
        for sid in stale:
            del self._last[sid]


class KeyedThrottle:
    """Like LiveThrottle for any key and item: the latest item per item key, one release per
    interval per key (tag aggregates: key = tag, item key = (metric, epoch))."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._pending: dict[Hashable, dict[Any, Any]] = {}
        self._last: dict[Hashable, float] = {}

    def add(self, key: Hashable, items: dict[Any, Any]) -> None:
        """Queue items; a later item with the same item key replaces the earlier one."""
        self._pending.setdefault(key, {}).update(items)

    def due(self, now: float) -> list[tuple[Hashable, list[Any]]]:
        """Pop the keys whose interval has passed, with their items in item-key order."""
        ready = [
            k
            for k in self._pending
            if now - self._last.get(k, float("-inf")) >= self.interval - 1e-6
        ]
        out = []
        for k in ready:
            items = self._pending.pop(k)
            self._last[k] = now
            out.append((k, [items[i] for i in sorted(items)]))
        for k in [
            k
            for k, t in self._last.items()
            if now - t > 10 * self.interval + 60 and k not in self._pending
        ]:
            del self._last[k]
        return out

    def pending(self) -> int:
        """How many keys have items waiting."""
        return len(self._pending)
