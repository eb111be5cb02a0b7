"""Live charts: the `nnt.live` → Channels bridge and the browser WebSocket consumer."""
