"""Live tag aggregates: epoch points re-keyed by (owner, tag), folded into a Faust table,
persisted to nnt_tag_aggregate and streamed (throttled) to nnt.live as
`LiveUpdate(kind="tag", owner=..., tag=...)`. Scoped to the owner: users never share a group.

Flow: the epochs agent, once its rows are committed, sends each tagged simulation's points
to the internal tag-points topic keyed by (owner, tag); `aggregate_tags` consumes it, so all
keys of one group (tags.key) live in one partition of the table. Table changelog messages go
to the partition of the event that caused them (set explicitly: a batch mixes partitions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar, cast

import psycopg
from faust.types import EventT, StreamT

from schemas.epochs import EpochEvent
from schemas.live import LiveUpdate
from schemas.status import StatusEvent
from store import tags as store_tags
from store.sink import SinkError
from store.tables import TAG_AGGREGATE, TAG_AGGREGATE_KEY
from stream_processors import tags
from stream_processors.app import (
    app,
    settings,
    simulation_tags,
    sink,
    tag_aggregates,
    tag_cache,
    tag_points_topic,
    tag_throttle,
)
from stream_processors.consumer import take_batches
from stream_processors.outputs import dead_letter, send_live

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[tuple]
R = TypeVar("R")


async def _read(read: Callable[[Conn, list[str]], Awaitable[list[R]]], ids: list[str]) -> list[R]:
    """Rows of one store.tags read through the sink; none when the database refuses it (the
    tables may be missing: aggregates wait, ingestion does not)."""
    try:
        return await sink.run(lambda conn: read(conn, ids))
    except SinkError as exc:
        log.warning("tag aggregates: cannot read (%s)", exc)
        return []


def _from_table(sid: str) -> tuple[str, list[str]] | None:
    """(owner or "", tags) the status events told of a simulation; None if none did."""
    doc = simulation_tags.data.get(sid)
    if doc is None:
        return None
    if isinstance(doc, list):  # written before owners were kept
        return "", list(doc)
    return str(doc.get("owner") or ""), list(doc.get("tags") or [])


async def lookup_tags(sids: Iterable[str]) -> dict[str, tags.Tagged]:
    """Owner and tags per simulation.

    nnt_simulation's owner_name and tags when it has a row with an owner (the web renames
    owners and edits tags), else what the status events told (the table), else ("", []):
    nobody's. Database answers are cached for NNT_TAG_CACHE_S.
    """
    now, wanted = time.monotonic(), set(sids)
    stored = {sid: tag_cache.get(sid, now) for sid in wanted}
    missing = [sid for sid, hit in stored.items() if hit is None]
    if missing:
        found = {
            sid: (owner or "", list(t or []))
            for sid, owner, t in await _read(store_tags.simulation_tags, missing)
        }
        for sid in missing:
            answer: tags.Tagged = found.get(sid, ("", []))
            stored[sid] = answer
            tag_cache.put(sid, answer, now)
    out: dict[str, tags.Tagged] = {}
    for sid, hit in stored.items():
        db_owner, db_tags = hit or ("", [])
        told = _from_table(sid)
        out[sid] = (db_owner, db_tags) if db_owner or told is None else told
    return out


async def contribute(points: list[tags.Point], known: dict[str, tags.Tagged] | None = None) -> None:
    """Send the points of tagged simulations to the tag-points topic and wait for the broker.

    Waiting matters: the caller's events are acked after this returns, so a crash before
    the broker has the points replays the events (and the aggregates count them once).
    """
    if not points:
        return
    tag_map = known if known is not None else await lookup_tags(p[0] for p in points)
    futures = [
        await tag_points_topic.send(
            key=tags.group_key(owner, tag), value=tags.encode(owner, tag, pts)
        )
        for (owner, tag), pts in tags.by_tag(points, tag_map).items()
    ]
    for fut in futures:
        await fut


async def contribute_events(events: Sequence[EpochEvent]) -> None:
    """The points of the tagged simulations among `events` (see contribute)."""
    if not events:
        return
    sids = {e.simulation_id for e in events}  # a batch holds many epochs of few runs
    known = await lookup_tags(str(sid) for sid in sids)
    with_tags = {sid for sid in sids if known[str(sid)][1]}
    if not with_tags:
        return
    tagged = [e for e in events if e.simulation_id in with_tags]
    await contribute(tags.points(tagged), known)


async def remember_tags(items: Sequence[tuple[EventT, StatusEvent]]) -> None:
    """Keep the table's owners and tags current; count the past epochs of a simulation newly
    tagged."""
    changed: list[str] = []
    for event, status in items:
        if status.simulation_id is None or status.tags is None:
            continue
        sid = str(status.simulation_id)
        told = _from_table(sid)
        owner = status.owner or (told[0] if told else "")
        doc = {"owner": owner, "tags": list(status.tags)}
        if simulation_tags.data.get(sid) != doc:
            simulation_tags.data[sid] = doc
            simulation_tags.send_changelog(event.message.partition, sid, doc)
            if told is None or told[1] != doc["tags"]:
                changed.append(sid)
    if changed:  # epochs may have arrived before the tags: fold in what is already stored
        found = [tags.db_point(*r) for r in await _read(store_tags.epoch_points, changed)]
        await contribute([p for p in found if p is not None])


def fold(batch: Sequence[EventT]) -> tuple[dict[str, tags.Aggregate], dict[str, tags.Aggregate]]:
    """Apply a batch of tag-points messages to the table: (touched, changed) aggregates."""
    touched: dict[str, tags.Aggregate] = {}
    changed: dict[str, tags.Aggregate] = {}
    for event in batch:
        owner, tag, points = tags.decode(event.message.value or b"")
        state = {}
        for p in points:
            k = tags.key(owner, tag, p[1], p[2])
            state[k] = touched.get(k) or tags.Aggregate.from_json(tag_aggregates.data.get(k))
        now_changed = tags.apply(state, owner, tag, points)
        touched.update(state)
        changed.update(now_changed)
        for k, agg in now_changed.items():
            doc = agg.to_json()
            tag_aggregates.data[k] = doc
            tag_aggregates.send_changelog(event.message.partition, k, doc)
    return touched, changed


async def valid(batch: Sequence[EventT]) -> list[EventT]:
    """The decodable tag-points messages; others are dead-lettered."""
    out = []
    for event in batch:
        try:
            tags.decode(event.message.value or b"")
            out.append(event)
        except ValueError as exc:
            await dead_letter(event, str(exc))
    return out


async def write_aggregates(conn: Conn, rows: list[tuple]) -> int:
    """Upsert nnt_tag_aggregate rows (absolute values)."""
    return await sink.copy(conn, TAG_AGGREGATE, rows, update=TAG_AGGREGATE_KEY)


@app.agent(tag_points_topic, concurrency=1)
async def aggregate_tags(stream: StreamT) -> None:
    """tag points -> the tag-aggregates table -> nnt_tag_aggregate (upsert) -> nnt.live."""
    async for batch in take_batches(
        stream,
        settings.nnt_stream_batch_size,
        settings.nnt_stream_batch_within,
        settings.nnt_stream_batch_idle,
    ):
        touched, changed = fold(await valid(batch))
        now = datetime.now(UTC)
        # Every touched key is written, changed or not: a replay after a crash between the
        # table update and the commit must still reach the database. A refused write is
        # retried, never skipped: the batch stays unacked until the rows are in.
        table_rows = [agg.row(*tags.split_key(k), now) for k, agg in touched.items()]
        if table_rows:
            await sink.run_until_written(
                partial(write_aggregates, rows=table_rows),
                f"tag aggregates: {len(table_rows)} rows",
            )
        for k, agg in changed.items():
            owner, tag, metric, epoch = tags.split_key(k)
            tag_throttle.add((owner, tag), {(metric, epoch): agg.live(metric, epoch)})
        await flush_tag_live()


async def flush_tag_live() -> None:
    """Send the coalesced aggregates of every (owner, tag) whose interval has passed."""
    for group, aggregates in tag_throttle.due(time.monotonic()):
        owner, tag = cast(tags.Group, group)
        await send_live(LiveUpdate(kind="tag", tag=tag, owner=owner, aggregates=aggregates))
