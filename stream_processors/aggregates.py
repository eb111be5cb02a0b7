"""Live tag aggregates: epoch points re-keyed by tag, folded into a Faust table, persisted to
nnt_tag_aggregate and streamed (throttled) to nnt.live as `LiveUpdate(kind="tag")`.

Flow: the epochs agent, once its rows are committed, sends each tagged simulation's points
to the internal tag-points topic keyed by tag; `aggregate_tags` consumes it, so all keys of
one tag ("tag|metric|epoch") live in one partition of the table. Table changelog messages go
to the partition of the event that caused them (set explicitly: a batch mixes partitions).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from functools import partial

import psycopg
from faust.types import EventT, StreamT

from schemas.epochs import EpochEvent
from schemas.live import LiveUpdate
from schemas.status import StatusEvent
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
from stream_processors.outputs import dead_letter, send_live
from stream_processors.rows import TAG_AGGREGATE, TAG_AGGREGATE_KEY
from stream_processors.sink import SinkError

log = logging.getLogger(__name__)
Conn = psycopg.AsyncConnection[tuple]

TAGS_SQL = "SELECT id::text, tags FROM nnt_simulation WHERE id = ANY(%s::uuid[])"
POINTS_SQL = (
    "SELECT simulation_id, metric, epoch, value, at FROM nnt_epoch_metric "
    "WHERE simulation_id = ANY(%s::uuid[])"
)


async def _read(sql: str, ids: list[str]) -> list[tuple]:
    """Rows of one read query through the sink; none when the tables are missing."""

    async def work(conn: Conn) -> list[tuple]:
        cur = await conn.execute(sql, (ids,))
        return await cur.fetchall()

    try:
        return await sink.run(work)
    except SinkError as exc:
        log.warning("tag aggregates: cannot read (%s)", exc)
        return []


async def lookup_tags(sids: Iterable[str]) -> dict[str, list[str]]:
    """Tags per simulation: the table (status events), else nnt_simulation (cached)."""
    now, out, missing = time.monotonic(), {}, []
    for sid in set(sids):
        known = simulation_tags.data.get(sid)
        if known is None:
            known = tag_cache.get(sid, now)
        if known is None:
            missing.append(sid)
        else:
            out[sid] = list(known)
    if missing:
        found = {sid: list(t or []) for sid, t in await _read(TAGS_SQL, missing)}
        for sid in missing:
            out[sid] = found.get(sid, [])
            tag_cache.put(sid, out[sid], now)
    return out


async def contribute(points: list[tags.Point], known: dict[str, list[str]] | None = None) -> None:
    """Send the points of tagged simulations to the tag-points topic and wait for the broker.

    Waiting matters: the caller's events are acked after this returns, so a crash before
    the broker has the points replays the events (and the aggregates count them once).
    """
    if not points:
        return
    tag_map = known if known is not None else await lookup_tags(p[0] for p in points)
    futures = [
        await tag_points_topic.send(key=tag.encode(), value=tags.encode(tag, pts))
        for tag, pts in tags.by_tag(points, tag_map).items()
    ]
    for fut in futures:
        await fut


async def contribute_events(events: Sequence[EpochEvent]) -> None:
    """The points of the tagged simulations among `events` (see contribute)."""
    if not events:
        return
    known = await lookup_tags(str(e.simulation_id) for e in events)
    tagged = [e for e in events if known.get(str(e.simulation_id))]
    await contribute(tags.points(tagged), known)


async def remember_tags(items: Sequence[tuple[EventT, StatusEvent]]) -> None:
    """Keep the table's tags current; count the past epochs of a simulation newly tagged."""
    changed: dict[str, list[str]] = {}
    for event, status in items:
        if status.simulation_id is None or status.tags is None:
            continue
        sid, new = str(status.simulation_id), list(status.tags)
        if simulation_tags.data.get(sid) != new:
            simulation_tags.data[sid] = new
            simulation_tags.send_changelog(event.message.partition, sid, new)
            changed[sid] = new
    if changed:  # epochs may have arrived before the tags: fold in what is already stored
        found = [tags.db_point(*r) for r in await _read(POINTS_SQL, list(changed))]
        await contribute([p for p in found if p is not None], changed)


def fold(batch: Sequence[EventT]) -> tuple[dict[str, tags.Aggregate], dict[str, tags.Aggregate]]:
    """Apply a batch of tag-points messages to the table: (touched, changed) aggregates."""
    touched: dict[str, tags.Aggregate] = {}
    changed: dict[str, tags.Aggregate] = {}
    for event in batch:
        tag, points = tags.decode(event.message.value or b"")
        state = {}
        for p in points:
            k = tags.key(tag, p[1], p[2])
            state[k] = touched.get(k) or tags.Aggregate.from_json(tag_aggregates.data.get(k))
        now_changed = tags.apply(state, tag, points)
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
    async for batch in stream.take_events(
        settings.nnt_stream_batch_size, within=settings.nnt_stream_batch_within
    ):
        touched, changed = fold(await valid(batch))
        now = datetime.now(UTC)
        # Every touched key is written, changed or not: a replay after a crash between the
        # table update and the commit must still reach the database.
        table_rows = [agg.row(*tags.split_key(k), now) for k, agg in touched.items()]
        try:
            await sink.run(partial(write_aggregates, rows=table_rows))
        except SinkError as exc:
            log.error("tag aggregates: %d rows refused: %s", len(table_rows), exc)
        for k, agg in changed.items():
            tag, metric, epoch = tags.split_key(k)
            tag_throttle.add(tag, {(metric, epoch): agg.live(metric, epoch)})
        await flush_tag_live()


async def flush_tag_live() -> None:
    """Send the coalesced aggregates of every tag whose interval has passed."""
    for tag, aggregates in tag_throttle.due(time.monotonic()):
        await send_live(LiveUpdate(kind="tag", tag=str(tag), aggregates=aggregates))
