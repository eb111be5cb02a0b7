"""Diagnosis alerts on every page: `/ws/alerts/` joins the user's alert group, and each new
diagnosis of one of their runs that their level lets through (web.accounts.alerts) becomes an
`alert` message the page shows as a toast and a desktop notification (web/static/web/alerts.js).

A `diagnosis` update (the run's active set changed) makes the socket read the run's diagnoses
first reported since the socket opened (store/diagnoses.py, as `GET /api/alerts` does): new
means a new row, whatever epochs the stream workers folded into one update, so a problem that
stays active, or comes back, is announced once. A socket also remembers what it announced.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime, timedelta
from typing import Any

from channels.db import database_sync_to_async
from django.db import connection
from django.utils import timezone

from store import diagnoses as store
from web.accounts import alerts
from web.live.consumers import OneGroup
from web.live.messages import alert_group

log = logging.getLogger(__name__)
MAX_REMEMBERED = 2000
# Rows reported this long before the socket opened still count as new: the page may have
# opened between the row's commit and its update (clocks of the web and the database differ).
GRACE = timedelta(seconds=10)


@database_sync_to_async
def _reported(user: Any, simulation_id: str, after: datetime) -> list[dict[str, Any]]:
    """The user's level's share of this run's diagnoses first reported after `after` (the
    run must be the user's own: alerts are personal)."""
    level = alerts.preference(user)
    try:
        sid = uuid.UUID(simulation_id)
    except ValueError:
        return []
    if level == "off":
        return []
    with connection.cursor() as cursor:
        rows = store.read_alerts(cursor, user.pk, after, 200)
    return [r for r in rows if r["simulation_id"] == sid and alerts.wanted(level, r["severity"])]


TOAST = ("problem", "severity", "title", "summary", "fix", "first_epoch")


class AlertConsumer(OneGroup):
    """One page's alert socket: the user's own runs' new diagnoses, filtered by their level
    as it is when each arrives (a change on the settings page applies at once)."""

    def group_for(self, user: Any) -> str:
        """The user's alert group; what was announced starts empty, from a little before now."""
        self.announced: set[tuple[str, str]] = set()
        self.opened = timezone.now() - GRACE
        return alert_group(user.get_username())

    async def live_message(self, event: dict[str, Any]) -> None:
        """A run's diagnoses changed: announce its new rows the level wants, once each."""
        payload = event.get("payload") or {}
        if self.ended or payload.get("kind") != "diagnosis":
            return
        sid = str(payload.get("simulation_id") or "")
        rows = await _reported(self.scope["user"], sid, self.opened)
        new = [r for r in reversed(rows) if (sid, r["problem"]) not in self.announced]
        if not new:
            return
        if len(self.announced) > MAX_REMEMBERED:
            self.announced.clear()
        self.announced.update((sid, r["problem"]) for r in new)
        log.info("simulation %s: %d diagnosis alert(s) sent to a page", sid, len(new))
        diagnoses = [{k: r[k] for k in TOAST} for r in new]
        await self.send_json(
            {"kind": "alert", "simulation_id": sid, "name": new[0]["name"], "diagnoses": diagnoses}
        )
