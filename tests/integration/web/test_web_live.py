"""WebSocket consumer: who may join, and what reaches the browser from the bridge."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator


def _sim(owner: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(owner=owner, owner_name=owner.get_username(), name="ws run")


def _communicator(sim_id: uuid.UUID, user: Any) -> WebsocketCommunicator:
    from channels.routing import URLRouter

    from web.live.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/simulations/{sim_id}/")
    comm.scope["user"] = user
    return comm


def test_it_forwards_bridge_updates_to_the_owner(make_user: Any) -> None:
    from web.live.bridge import forward

    owner = make_user()
    sim = _sim(owner)
    raw = json.dumps(
        {
            "kind": "epochs",
            "simulation_id": str(sim.id),
            "points": [{"epoch": 1, "values": {"loss": 0.7}}],
        }
    ).encode()

    async def scenario() -> Any:
        comm = _communicator(sim.id, owner)
        connected, _ = await comm.connect()
        assert connected
        await forward(get_channel_layer(), raw)
        got = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return got

    got = asyncio.run(scenario())
    assert got == {
        "kind": "epochs",
        "simulation_id": str(sim.id),
        "points": [{"epoch": 1, "values": {"loss": 0.7}}],
    }


def test_it_refuses_other_users(make_user: Any) -> None:
    from django.contrib.auth.models import AnonymousUser

    sim = _sim(make_user())

    async def scenario(user: Any) -> bool:
        comm = _communicator(sim.id, user)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert asyncio.run(scenario(make_user())) is False
    assert asyncio.run(scenario(AnonymousUser())) is False
    assert asyncio.run(scenario(make_user(staff=True))) is True
