"""Live tag aggregates, pure: contributions of epoch points and their (owner, tag, metric, epoch)
state.

Aggregates are scoped to the simulations' owner: two users who pick the same tag get two
separate groups (a tag is a user's label, never a shared namespace).

Replay safety: an aggregate remembers the value each simulation contributed, so the same
epoch point delivered twice counts once; a later value of the same simulation, metric and
epoch (an epoch re-run after a resume) replaces the earlier one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.epochs import EpochEvent

# A contribution: simulation id, metric, epoch, value, event time (POSIX seconds).
Point = tuple[str, str, int, float, float]
# Whose tag: (owner username, tag). Owner "" is a run no user owns (visible to staff only).
Group = tuple[str, str]
# What is known of a simulation: its owner and its tags.
Tagged = tuple[str, list[str]]


def key(owner: str, tag: str, metric: str, epoch: int) -> str:
    """Table key of one aggregate: a JSON array, unambiguous whatever the names hold."""
    return json.dumps([owner, tag, metric, epoch], separators=(",", ":"), ensure_ascii=False)


def split_key(table_key: str) -> tuple[str, str, str, int]:
    """Inverse of key(): (owner, tag, metric, epoch)."""
    owner, tag, metric, epoch = json.loads(table_key)
    return str(owner), str(tag), str(metric), int(epoch)


def group_key(owner: str, tag: str) -> bytes:
    """Message key of one (owner, tag) on the tag-points topic: all its aggregates in one
    partition."""
    return json.dumps([owner, tag], separators=(",", ":"), ensure_ascii=False).encode()


def points(events: Iterable[EpochEvent]) -> list[Point]:
    """Every metric point of the events as contributions."""
    return [
        (str(e.simulation_id), metric, e.epoch, float(value), e.at.timestamp())
        for e in events
        for metric, value in e.points().items()
    ]


def db_point(sid: Any, metric: str, epoch: int, value: float | None, at: datetime) -> Point | None:
    """A contribution from an nnt_epoch_metric row (None for a null value)."""
    if value is None or not math.isfinite(value):
        return None
    return (str(sid), metric, epoch, float(value), at.timestamp())


def by_tag(contributions: Iterable[Point], tagged: dict[str, Tagged]) -> dict[Group, list[Point]]:
    """Contributions grouped by (owner, tag) of their simulation (untagged ones dropped)."""
    out: dict[Group, list[Point]] = {}
    for point in contributions:
        owner, tags = tagged.get(point[0], ("", []))
        for tag in tags:
            out.setdefault((owner, tag), []).append(point)
    return out


def encode(owner: str, tag: str, contributions: list[Point]) -> bytes:
    """The message of one (owner, tag)'s contributions on the internal tag-points topic."""
    return json.dumps({"owner": owner, "tag": tag, "points": contributions}).encode()


def decode(data: bytes) -> tuple[str, str, list[Point]]:
    """Inverse of encode(); raises ValueError on anything malformed (an owner is required)."""
    try:
        doc = json.loads(data)
        return (
            str(doc["owner"]),
            str(doc["tag"]),
            [(str(s), str(m), int(e), float(v), float(t)) for s, m, e, v, t in doc["points"]],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"bad tag points message: {exc}") from exc


@dataclass
class Aggregate:
    """count, sum, sum of squares, min and max of one (tag, metric, epoch), with contributors."""

    count: int = 0
    sum: float = 0.0
    sumsq: float = 0.0
    min: float | None = None
    max: float | None = None
    sims: dict[str, list[float]] | None = None  # simulation id -> [value, event time]

    def add(self, sid: str, value: float, at: float) -> bool:
        """Count one simulation's value; returns whether the aggregate changed."""
        sims = self.sims if self.sims is not None else {}
        self.sims = sims
        seen = sims.get(sid)
        if seen is None:
            sims[sid] = [value, at]
            self.count += 1
            self.sum += value
            self.sumsq += value * value
            self.min = value if self.min is None else min(self.min, value)
            self.max = value if self.max is None else max(self.max, value)
            return True
        if at <= seen[1] or value == seen[0]:
            return False  # a replay, or an older copy of what is counted
        sims[sid] = [value, at]
        self._recompute()
        return True

    def _recompute(self) -> None:
        values = [v for v, _ in (self.sims or {}).values()]
        self.count, self.sum = len(values), math.fsum(values)
        self.sumsq = math.fsum(v * v for v in values)
        self.min, self.max = (min(values), max(values)) if values else (None, None)

    @property
    def mean(self) -> float | None:
        """Mean over the contributing simulations."""
        return self.sum / self.count if self.count else None

    @property
    def std(self) -> float | None:
        """Population standard deviation (numpy's default, ddof=0)."""
        if not self.count:
            return None
        mean = self.sum / self.count
        return math.sqrt(max(self.sumsq / self.count - mean * mean, 0.0))

    def to_json(self) -> dict[str, Any]:
        """The Faust table value."""
        return {
            "count": self.count,
            "sum": self.sum,
            "sumsq": self.sumsq,
            "min": self.min,
            "max": self.max,
            "sims": self.sims or {},
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any] | None) -> Aggregate:
        """Inverse of to_json (an empty aggregate for None)."""
        if not doc:
            return cls()
        return cls(
            int(doc["count"]),
            float(doc["sum"]),
            float(doc["sumsq"]),
            doc.get("min"),
            doc.get("max"),
            {k: list(v) for k, v in (doc.get("sims") or {}).items()},
        )

    def live(self, metric: str, epoch: int) -> dict[str, Any]:
        """The aggregate as a LiveUpdate(kind="tag") entry."""
        return {
            "metric": metric,
            "epoch": epoch,
            "count": self.count,
            "mean": self.mean,
            "min": self.min,
            "max": self.max,
            "std": self.std,
        }

    def row(self, owner: str, tag: str, metric: str, epoch: int, now: datetime) -> tuple[Any, ...]:
        """The nnt_tag_aggregate row (absolute values: an upsert is replay-safe)."""
        return (
            owner,
            tag,
            metric,
            epoch,
            self.count,
            self.sum,
            self.sumsq,
            self.min,
            self.max,
            now,
        )


def apply(
    state: dict[str, Aggregate], owner: str, tag: str, contributions: Iterable[Point]
) -> dict[str, Aggregate]:
    """Fold one (owner, tag)'s contributions into `state` (table key -> aggregate); return the
    changed."""
    changed: dict[str, Aggregate] = {}
    for sid, metric, epoch, value, at in contributions:
        k = key(owner, tag, metric, epoch)
        agg = state.get(k)
        if agg is None:
            agg = state[k] = Aggregate()
        if agg.add(sid, value, at):
            changed[k] = agg
    return changed


class TagCache:
    """Owner and tags read from nnt_simulation, trusted for `ttl` seconds (the web may retag a
    run or rename its owner)."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._tags: dict[str, tuple[Tagged, float]] = {}

    def get(self, sid: str, now: float) -> Tagged | None:
        """Cached owner and tags of a simulation, None when unknown or expired."""
        hit = self._tags.get(sid)
        return hit[0] if hit is not None and now - hit[1] < self.ttl else None

    def put(self, sid: str, tags: Tagged, now: float) -> None:
        """Remember a simulation's owner and tags (no tags too: untagged is an answer)."""
        self._tags[sid] = (tags, now)
        if len(self._tags) > 100_000:  # bound memory: forget the oldest half
            for old in sorted(self._tags, key=lambda s: self._tags[s][1])[:50_000]:
                del self._tags[old]
