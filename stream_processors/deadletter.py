"""Dead-letter envelopes: what could not be decoded, why, and the original bytes (base64)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime


def simulation_hint(key: bytes | None, value: bytes | None) -> str | None:
    """Best-effort simulation id of an undecodable message: its key, else a JSON field."""
    if key:
        try:
            return str(uuid.UUID(key.decode()))
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        sid = json.loads(value or b"").get("simulation_id")
        return str(uuid.UUID(str(sid))) if sid else None
    except (ValueError, AttributeError, UnicodeDecodeError):
        return None


def envelope(
    topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str
) -> bytes:
    """The JSON document sent to the dead-letter topic."""
    return json.dumps(
        {
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "simulation_id": simulation_hint(key, value),
            "key": key.decode(errors="replace") if key is not None else None,
            "reason": reason[:2000],
            "value_b64": base64.b64encode(value or b"").decode(),
            "at": datetime.now(UTC).isoformat(),
        }
    ).encode()
