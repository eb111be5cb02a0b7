"""ASGI entry point: HTTP → Django, WebSocket → Channels; starts the live bridge lazily."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "web.settings")

from django.core.asgi import get_asgi_application  # noqa: E402

django_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from web.live import bridge  # noqa: E402
from web.live.routing import websocket_urlpatterns  # noqa: E402


class StartBridge:
    """Starts the `nnt.live` bridge on the server's loop with the first HTTP or WebSocket scope."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if settings.NNT_LIVE_BRIDGE and scope["type"] in ("http", "websocket"):
            bridge.ensure_started(settings.NNT_KAFKA_BOOTSTRAP, settings.NNT_KAFKA_SECURITY)
        return await self.app(scope, receive, send)


router = ProtocolTypeRouter(
    {
        "http": django_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        ),
    }
)
application = StartBridge(router)
