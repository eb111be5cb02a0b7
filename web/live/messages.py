"""Pure routing of `nnt.live` updates to Channels groups and browser payloads."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from typing import Any

from pydantic import BaseModel

from schemas.live import LiveUpdate

# Channels group names: ASCII letters, digits, hyphens, underscores, periods; under 100 chars.
_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
EVENT_TYPE = "live.message"
STAFF_GROUP = "staff-lists"  # every staff list page: they see all runs


def _safe(prefix: str, value: str) -> str:
    if _SAFE.match(value):
        return f"{prefix}-{value}"
    return f"{prefix}-h{hashlib.sha1(value.encode()).hexdigest()}"


def simulation_group(simulation_id: uuid.UUID | str) -> str:
    """Group of one simulation's browsers."""
    return f"sim-{simulation_id}"


def user_group(username: str) -> str:
    """Group of one user's browsers (status of all their runs)."""
    return _safe("user", username)


def alert_group(username: str) -> str:
    """Group of one user's alert sockets (every page): the diagnoses of their own runs only,
    staff included (alerts are personal)."""
    return _safe("alerts", username)


def account_group(user_id: int | str) -> str:
    """Group of every socket of one account, whatever it shows: told when the account or one
    of its sessions ends (web.live.sessions)."""
    return f"account-{user_id}"


def tag_group(owner: str, tag: str) -> str:
    """Group of the browsers watching one user's tag (users who pick the same tag never
    share a group): a hash of the pair, so no owner and tag can spell another's."""
    pair = json.dumps([owner, tag], separators=(",", ":"), ensure_ascii=False)
    return f"tag-h{hashlib.sha1(pair.encode()).hexdigest()}"


def payload(update: LiveUpdate) -> dict[str, Any]:
    """What the browser receives: compact JSON, `kind` first."""
    sim = str(update.simulation_id) if update.simulation_id else None
    if update.kind == "epochs":
        points = [p.model_dump(mode="json", exclude_none=True) for p in update.points]
        return {"kind": "epochs", "simulation_id": sim, "points": points}
    if update.kind == "status":
        return {"kind": "status", "simulation_id": sim, "status": _json(update.status)}
    if update.kind == "row":
        return {"kind": "simulation", "simulation_id": sim, "simulation": _json(update.row)}
    if update.kind == "diagnosis":
        diagnoses = [_json(d) for d in update.diagnoses or []]
        return {"kind": "diagnosis", "simulation_id": sim, "diagnoses": diagnoses,
                "health": _json(update.health)}  # fmt: skip
    return {"kind": "tag", "tag": update.tag, "aggregates": [_json(a) for a in update.aggregates]}


def _json(record: BaseModel | None) -> dict[str, Any]:
    """A record of an update as the browser reads it: the keys it travelled with
    (schemas.live); {} when the update has none."""
    return record.model_dump(mode="json", exclude_none=True) if record is not None else {}


def routes(update: LiveUpdate) -> list[tuple[str, dict[str, Any]]]:
    """(group, channel-layer event) pairs for one update."""
    event = {"type": EVENT_TYPE, "payload": payload(update)}
    groups: list[str] = []
    if update.kind in ("epochs", "status", "diagnosis") and update.simulation_id:
        groups.append(simulation_group(update.simulation_id))
    if update.kind in ("status", "row", "diagnosis") and update.owner:
        groups.append(user_group(update.owner))
    if update.kind in ("status", "row", "diagnosis") and update.simulation_id:
        groups.append(STAFF_GROUP)  # staff lists show every user's runs
    if update.kind == "diagnosis" and update.simulation_id and update.owner:
        groups.append(alert_group(update.owner))
    if update.kind == "tag" and update.tag and update.owner is not None:  # no owner: nobody's
        groups.append(tag_group(update.owner, update.tag))
    return [(g, event) for g in groups]
