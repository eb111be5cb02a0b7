"""Routing of nnt.live updates to Channels groups and the bridge's handling of bad messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from schemas.live import LivePoint, LiveUpdate
from web.live import messages
from web.live.bridge import forward

SIM = uuid.UUID("11111111-2222-3333-4444-555555555555")


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
        status={"status": "running", "epoch": 2, "total_epochs": 9},
    )
    groups = [g for g, _ in messages.routes(update)]
    assert groups == [f"sim-{SIM}", "user-ada", messages.STAFF_GROUP]


def test_it_routes_a_row_changed_in_the_web_to_the_owners_and_the_staffs_lists() -> None:
    row = {"id": str(SIM), "name": "run", "tags": ["a"], "status": "queued"}
    update = LiveUpdate(kind="row", simulation_id=SIM, owner="ada", row=row)
    routed = messages.routes(update)
    assert [g for g, _ in routed] == ["user-ada", messages.STAFF_GROUP]
    assert routed[0][1]["payload"] == {
        "kind": "simulation",
        "simulation_id": str(SIM),
        "simulation": row,
    }


def test_it_routes_tags_to_a_safe_group_of_their_owner() -> None:
    update = LiveUpdate(kind="tag", tag="lr sweep/α", owner="ada", aggregates=[{"metric": "loss"}])
    [(group, event)] = messages.routes(update)
    assert group.startswith("tag-h") and group.isascii() and len(group) < 100
    assert group == messages.tag_group("ada", "lr sweep/α")
    assert event["payload"]["tag"] == "lr sweep/α"


def test_it_never_shares_a_tag_group_between_users() -> None:
    assert messages.tag_group("ada", "mnist") != messages.tag_group("bob", "mnist")
    assert messages.tag_group("a.b", "c") != messages.tag_group("a", "b.c")
    ownerless = LiveUpdate(kind="tag", tag="mnist", aggregates=[{"metric": "loss"}])
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
