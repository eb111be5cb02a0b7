"""WebSocket URLs."""

from __future__ import annotations

from django.urls import path

from web.live.alerts import AlertConsumer
from web.live.consumers import SimulationConsumer, UserConsumer

websocket_urlpatterns = [
    path("ws/simulations/", UserConsumer.as_asgi()),
    path("ws/simulations/<uuid:simulation_id>/", SimulationConsumer.as_asgi()),
    path("ws/alerts/", AlertConsumer.as_asgi()),
]
