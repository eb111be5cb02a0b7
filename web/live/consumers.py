"""WebSocket consumer: one browser watching one simulation."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from web.errors import NotFound
from web.live.messages import simulation_group
from web.simulations import access

log = logging.getLogger(__name__)
FORBIDDEN = 4403


@database_sync_to_async
def _may_see(user: Any, simulation_id: uuid.UUID) -> bool:
    try:
        access.get_visible(user, simulation_id)
    except NotFound:
        return False
    return True


class SimulationConsumer(AsyncJsonWebsocketConsumer):
    """Joins `sim-<id>` if the user may see the simulation; forwards live payloads."""

    group: str | None = None

    async def connect(self) -> None:
        """Accept owners and staff only."""
        simulation_id = self.scope["url_route"]["kwargs"]["simulation_id"]
        if not await _may_see(self.scope.get("user"), simulation_id):
            log.info("websocket refused for simulation %s", simulation_id)
            await self.close(code=FORBIDDEN)
            return
        self.group = simulation_group(simulation_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        """Leave the group."""
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Browsers only listen; ignore anything they send."""

    async def live_message(self, event: dict[str, Any]) -> None:
        """Forward one bridge payload to the browser."""
        await self.send_json(event["payload"])
