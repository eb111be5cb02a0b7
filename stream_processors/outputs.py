"""What the worker sends besides rows: dead letters and nnt.live updates."""

from __future__ import annotations

import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

from faust.types import EventT
from pydantic import ValidationError

from schemas import topics
from schemas.codecs import dumps
from schemas.diagnosis import Diagnosis
from schemas.live import LiveHealth, LiveUpdate
from store.diagnoses import verdict
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
    await live_topic.send(
        key=topics.key_of(update.simulation_id or update.tag), value=dumps(update)
    )


# What makes two active sets the same for the pages: problem, severity and layers.
Signature = tuple[tuple[str, str, tuple[str, ...]], ...]


def signature(active: Iterable[dict[str, Any]]) -> Signature:
    """The part of an active set whose change the pages are told of."""
    return tuple(sorted((d["problem"], d["severity"], tuple(d["layers"])) for d in active))


# One batch's diagnosis updates, held until its rows are committed: run -> (set, update).
Held = dict[uuid.UUID, tuple["Signature", LiveUpdate]]


class DiagnosisLive:
    """`diagnosis` live updates: one when a run's active set differs from the last one this
    worker sent for it (and at its first diagnosed epoch). A batch's write holds its updates
    (`hold`, in a `Held` of that batch only), and they are sent after its COMMIT; a
    restarted worker, having forgotten, may send a set once more. The memory of what was
    sent is shared by the sink's thread (store.sink) and the agent's: it is locked."""

    def __init__(self, remember: int = 50_000) -> None:
        self.remember = remember
        self.sent: OrderedDict[uuid.UUID, Signature] = OrderedDict()
        self._lock = threading.Lock()

    def changed(
        self, sets: dict[uuid.UUID, list[dict[str, Any]]]
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """The runs among `sets` whose active set is not the last one sent."""
        with self._lock:
            return {sid: a for sid, a in sets.items() if self.sent.get(sid) != signature(a)}

    @staticmethod
    def hold(
        held: Held,
        changed: dict[uuid.UUID, list[dict[str, Any]]],
        facts: dict[uuid.UUID, tuple[str, str, list[str]]],
    ) -> None:
        """Keep each changed run's update in its batch's `held` until the batch is committed
        (a later attempt at the same batch replaces it)."""
        for sid, active in changed.items():
            owner, status, flags = facts.get(sid, ("", "", []))
            try:
                update = LiveUpdate(
                    kind="diagnosis",
                    simulation_id=sid,
                    owner=owner or None,
                    diagnoses=[
                        Diagnosis.model_validate({k: v for k, v in d.items() if k != "active"})
                        for d in active
                    ],
                    health=LiveHealth.model_validate(
                        {"verdict": verdict(status, active), "flags": flags}
                    ),
                )
            except ValidationError as exc:  # a stored row the wire refuses: the pages wait
                log.warning("simulation %s: diagnosis update not sent (%s)", sid, exc)
                continue
            held[sid] = (signature(active), update)

    def release(self, held: Held, committed: Iterable[uuid.UUID]) -> list[LiveUpdate]:
        """The updates a batch held for runs whose events were committed, remembered as sent;
        those of attempts that were not committed are dropped."""
        out = []
        with self._lock:
            for sid in committed:
                if sid in held:
                    sig, update = held.pop(sid)
                    self.sent[sid] = sig
                    self.sent.move_to_end(sid)
                    out.append(update)
            while len(self.sent) > self.remember:
                self.sent.popitem(last=False)
        held.clear()
        return out
