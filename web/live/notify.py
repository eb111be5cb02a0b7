"""Pushes from the web itself to the simulation lists: a run's row changed (tags, name) or a
run was created here, and the staff group that receives every run's list updates.

The status projection's `nnt.live` updates reach lists through the bridge; these are the
changes only the web sees. They go to this process's list pages at once and, where bridges
run, to `nnt.live` as `row` updates so every other web process's bridge delivers them too
(a page of this process may get a row twice: rows are upserts). A failed push is logged,
never fails or delays the request that caused it.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from schemas import topics
from schemas.codecs import dumps
from schemas.live import LiveUpdate, RunRow
from web.live.messages import EVENT_TYPE, STAFF_GROUP, user_group

log = logging.getLogger(__name__)
_lock = threading.Lock()
_producer: Any = None


def run_row(sim: Any) -> RunRow:
    """One simulation's list row (the API's list fields)."""
    return RunRow(
        id=sim.id,
        experiment_id=sim.experiment_id,
        name=sim.name,
        owner=sim.owner_name,
        status=sim.status,
        epoch=sim.epoch,
        total_epochs=sim.total_epochs,
        tags=list(sim.tags or []),
        created_at=sim.created_at,
    )


def row(sim: Any) -> dict[str, Any]:
    """The browser payload of one simulation's list row."""
    return {
        "kind": "simulation",
        "simulation_id": str(sim.id),
        "simulation": run_row(sim).model_dump(mode="json"),
    }


def list_groups(owner_name: str) -> list[str]:
    """The groups of the list pages that show a run of this owner."""
    return [user_group(owner_name), STAFF_GROUP] if owner_name else [STAFF_GROUP]


def rows_changed(sims: list[Any]) -> None:
    """Tell the owners' and the staff's list pages about these rows (call after commit)."""
    if settings.NNT_LIVE_BRIDGE:
        for sim in sims:
            broadcast(sim)
    layer = get_channel_layer()
    if layer is None:
        return
    for sim in sims:
        event = {"type": EVENT_TYPE, "payload": row(sim)}
        for group in list_groups(sim.owner_name):
            try:
                async_to_sync(layer.group_send)(group, event)
            except Exception as exc:  # a channel layer outage must not fail the API call
                log.warning("simulation %s: list update not pushed (%s)", sim.id, exc)
                return


def _live_producer() -> Any:
    """The process-wide fire-and-forget producer of `row` updates, made on first use."""
    global _producer
    with _lock:
        if _producer is None:
            from confluent_kafka import Producer

            from web.simulations.commands import producer_config

            _producer = Producer(
                producer_config(settings.NNT_KAFKA_BOOTSTRAP, 30.0, settings.NNT_KAFKA_SECURITY)
            )
        return _producer


def _delivered(err: object, msg: Any) -> None:
    if err is not None:
        log.warning("list row update for %s not delivered to nnt.live: %s", msg.key(), err)


def broadcast(sim: Any) -> None:
    """Queue one `row` update on `nnt.live` for the other web processes; never blocks."""
    try:
        update = LiveUpdate(
            kind="row", simulation_id=sim.id, owner=sim.owner_name or None, row=run_row(sim)
        )
        producer = _live_producer()
        producer.produce(
            topics.LIVE, key=topics.key_of(sim.id), value=dumps(update), on_delivery=_delivered
        )
        producer.poll(0)
    except Exception as exc:  # a full queue or a broken client must not fail the request
        log.warning("simulation %s: list row update not queued (%s)", sim.id, exc)
