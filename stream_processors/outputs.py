"""What the worker sends besides rows: dead letters and nnt.live updates."""

from __future__ import annotations

import logging

from faust.types import EventT

from schemas.codecs import dumps
from schemas.live import LiveUpdate
from stream_processors import deadletter
from stream_processors.app import dead_letter_topic, live_topic

log = logging.getLogger(__name__)


async def dead_letter(event: EventT, reason: str) -> None:
    """Send one message to the dead-letter topic, wait for the broker, and log it."""
    await dead_letters([(event, reason)])


async def dead_letters(refused: list[tuple[EventT, str]]) -> None:
    """Send each message with its reason to the dead-letter topic, log them, then wait for
    the broker once for all (a flood of refused events costs no round trip per event)."""
    futures = []
    for event, reason in refused:
        msg = event.message
        key, value = msg.key, msg.value
        sid = deadletter.simulation_hint(key, value)
        log.warning(
            "simulation %s: %s[%d]@%d dead-lettered: %s",
            sid or "?",
            msg.topic,
            msg.partition,
            msg.offset,
            reason,
        )
        body = deadletter.envelope(msg.topic, msg.partition, msg.offset, key, value, reason)
        futures.append(await dead_letter_topic.send(key=key, value=body))
    for fut in futures:
        await fut


async def send_live(update: LiveUpdate) -> None:
    """Publish one live update keyed by its simulation or tag (best effort: never blocks a batch)."""
    key = str(update.simulation_id or update.tag or "").encode()
    await live_topic.send(key=key, value=dumps(update))
