"""Routing of nnt.live updates to Channels groups, the payloads browsers get, and the bridge's
handling of bad messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from schemas.codecs import dumps
from schemas.live import LivePoint, LiveStatus, LiveUpdate, RunRow, TagAggregate
from tests.unit.schemas.test_live import WIRE
from web.live import messages, notify
from web.live.bridge import forward

SIM = uuid.UUID("11111111-2222-3333-4444-555555555555")
LOSS = TagAggregate(metric="loss", epoch=1, count=2, mean=0.5, min=0.4, max=0.6, std=0.1)


class FakeLayer:
    """Records group_send calls like the in-memory channel layer would receive them."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    async def group_send(self, group: str, event: dict[str, Any]) -> None:
        self.sent.append((group, event))


def test_it_routes_epochs_to_the_simulation_group() -> None:
    update = LiveUpdate(
        kind="epochs",
        simulation_id=SIM,
        points=[LivePoint(epoch=3, values={"loss": 0.5, "val_loss": 0.6})],
    )
    [(group, event)] = messages.routes(update)
    assert group == f"sim-{SIM}"
    assert event["type"] == "live.message"
    assert event["payload"] == {
        "kind": "epochs",
        "simulation_id": str(SIM),
        "points": [{"epoch": 3, "values": {"loss": 0.5, "val_loss": 0.6}}],
    }


def test_it_routes_status_to_the_simulation_and_its_owner() -> None:
    update = LiveUpdate(
        kind="status",
        simulation_id=SIM,
        owner="ada",
        status=LiveStatus(status="running", epoch=2, total_epochs=9),
    )
    groups = [g for g, _ in messages.routes(update)]
    assert groups == [f"sim-{SIM}", "user-ada", messages.STAFF_GROUP]


def test_it_routes_a_row_changed_in_the_web_to_the_owners_and_the_staffs_lists() -> None:
    row = {"id": str(SIM), "name": "run", "tags": ["a"], "status": "queued"}
    update = LiveUpdate(kind="row", simulation_id=SIM, owner="ada", row=RunRow.model_validate(row))
    routed = messages.routes(update)
    assert [g for g, _ in routed] == ["user-ada", messages.STAFF_GROUP]
    assert routed[0][1]["payload"] == {
        "kind": "simulation",
        "simulation_id": str(SIM),
        "simulation": row,
    }


def test_it_routes_tags_to_a_safe_group_of_their_owner() -> None:
    update = LiveUpdate(kind="tag", tag="lr sweep/α", owner="ada", aggregates=[LOSS])
    [(group, event)] = messages.routes(update)
    assert group.startswith("tag-h") and group.isascii() and len(group) < 100
    assert group == messages.tag_group("ada", "lr sweep/α")
    assert event["payload"]["tag"] == "lr sweep/α"


def test_it_never_shares_a_tag_group_between_users() -> None:
    assert messages.tag_group("ada", "mnist") != messages.tag_group("bob", "mnist")
    assert messages.tag_group("a.b", "c") != messages.tag_group("a", "b.c")
    ownerless = LiveUpdate(kind="tag", tag="mnist", aggregates=[LOSS])
    assert messages.routes(ownerless) == []


def test_it_skips_bad_messages_and_forwards_good_ones() -> None:
    layer = FakeLayer()
    good = json.dumps(
        {
            "kind": "epochs",
            "simulation_id": str(SIM),
            "points": [{"epoch": 1, "values": {"loss": 1.0}}],
        }
    ).encode()
    sent = [
        asyncio.run(forward(layer, raw)) for raw in (b"not json", b'{"kind": "nope"}', None, good)
    ]
    assert sent == [0, 0, 0, 1]
    assert layer.sent[0][0] == f"sim-{SIM}"
    assert layer.sent[0][1]["payload"]["points"][0]["values"] == {"loss": 1.0}


# What the browser reads of each kind: the record as it travelled on `nnt.live`, key for key.
BROWSER_KEYS = {
    "status": [("status", "status")],
    "failed": [("status", "status")],
    "row": [("simulation", "row")],
    "tag": [("aggregates", "aggregates")],
    "diagnosis": [("diagnoses", "diagnoses"), ("health", "health")],
}


@pytest.mark.parametrize("name", list(BROWSER_KEYS))
def test_it_hands_the_browser_each_record_as_it_travelled(name: str) -> None:
    layer = FakeLayer()
    assert asyncio.run(forward(layer, WIRE[name].encode())) >= 1
    payload = layer.sent[0][1]["payload"]
    wire = json.loads(WIRE[name])
    for browser_key, wire_key in BROWSER_KEYS[name]:
        assert payload[browser_key] == wire[wire_key]
    assert json.loads(json.dumps(payload)) == payload  # plain JSON for the channel layer


def test_it_relays_a_partial_status_without_adding_defaults() -> None:
    raw = json.dumps({"kind": "status", "simulation_id": str(SIM), "owner": "ada",
                      "status": {"status": "paused", "epoch": 2}}).encode()  # fmt: skip
    layer = FakeLayer()
    asyncio.run(forward(layer, raw))
    assert layer.sent[0][1]["payload"]["status"] == {"status": "paused", "epoch": 2}


def test_the_web_sends_a_list_row_with_the_keys_the_pages_read() -> None:
    created = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    sim = SimpleNamespace(id=SIM, experiment_id=None, name="run", owner_name="ada",
                          status="queued", epoch=0, total_epochs=5, tags=["a"],
                          created_at=created)  # fmt: skip
    body = notify.row(sim)
    assert body == {
        "kind": "simulation",
        "simulation_id": str(SIM),
        "simulation": json.loads(WIRE["row"])["row"],
    }
    update = LiveUpdate(kind="row", simulation_id=SIM, owner="ada", row=notify.run_row(sim))
    assert json.loads(dumps(update))["row"] == body["simulation"]
