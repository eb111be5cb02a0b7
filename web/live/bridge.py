"""Bridge `nnt.live` → Channels groups, running inside the web process on its event loop."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from channels.layers import get_channel_layer
from pydantic import ValidationError

from schemas import topics
from schemas.kafkaauth import KafkaSecurity
from schemas.live import LiveUpdate
from web.live.messages import routes

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 30.0


async def forward(layer: Any, raw: bytes | None) -> int:
    """Decode one message and send it to its groups; a bad message is logged and skipped."""
    try:
        update = LiveUpdate.model_validate_json(raw or b"")
    except ValidationError as exc:
        log.warning("skipping bad nnt.live message (%s): %.200r", exc.error_count(), raw)
        return 0
    sent = 0
    for group, event in routes(update):
        await layer.group_send(group, event)
        sent += 1
    return sent


class LiveBridge:
    """Consumes `nnt.live` from the latest offset; retries with back-off while Kafka is down."""

    def __init__(self, bootstrap: str, security: KafkaSecurity) -> None:
        self.bootstrap = bootstrap
        self.security = security
        self.task: asyncio.Task[None] | None = None
        self.forwarded = 0

    def ensure_started(self) -> None:
        """Start once per process, on the running loop."""
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run(), name="nnt-live-bridge")

    async def run(self) -> None:
        """Consume forever; reconnect after any failure."""
        backoff = 1.0
        while True:
            try:
                await self._consume()
                backoff = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Kafka down, broker restart, ...: log and retry
                log.warning(
                    "live bridge: Kafka at %s unavailable (%s); retrying in %.0fs",
                    self.bootstrap,
                    exc,
                    backoff,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def _consume(self) -> None:
        from aiokafka import AIOKafkaConsumer

        consumer = AIOKafkaConsumer(
            topics.LIVE,
            bootstrap_servers=self.bootstrap,
            auto_offset_reset="latest",
            group_id=None,
            enable_auto_commit=False,
            client_id=f"nnt-web-live-{uuid.uuid4().hex[:8]}",
            **self.security.aiokafka_kwargs(),
        )
        try:
            await consumer.start()
            log.info("live bridge consuming %s from %s", topics.LIVE, self.bootstrap)
            layer = get_channel_layer()
            async for message in consumer:
                self.forwarded += await forward(layer, message.value)
        finally:
            await consumer.stop()


_bridge: LiveBridge | None = None


def ensure_started(bootstrap: str, security: KafkaSecurity) -> LiveBridge:
    """The process's bridge, started on the running loop if it is not yet."""
    global _bridge
    if _bridge is None:
        _bridge = LiveBridge(bootstrap, security)
    _bridge.ensure_started()
    return _bridge
