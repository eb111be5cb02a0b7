"""WebSocket consumers: one browser watching one simulation (and what it compares it with),
or the list of all of a user's simulations."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from web.errors import NotFound
from web.live import sessions
from web.live.messages import STAFF_GROUP, account_group, simulation_group, tag_group, user_group
from web.simulations import access, metrics

log = logging.getLogger(__name__)
FORBIDDEN = 4403
MAX_EXTRA_GROUPS = 8


@database_sync_to_async
def _may_see(user: Any, simulation_id: uuid.UUID) -> bool:
    try:
        access.get_visible(user, simulation_id)
    except NotFound:
        return False
    return True


@database_sync_to_async
def _points_since(simulation_id: uuid.UUID, since: int) -> list[dict[str, Any]]:
    return metrics.points_since(simulation_id, since)


def _since(scope: dict[str, Any]) -> int | None:
    """`?since=<epoch>` of the socket URL: the page has every epoch up to it."""
    raw = parse_qs(scope.get("query_string", b"").decode()).get("since", [None])[0]
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None


@database_sync_to_async
def _tag_owner(user: Any, page: uuid.UUID, tag: str) -> str | None:
    """Whose tag group a page may follow: its simulation's owner, when the user may see that
    simulation and the owner has a run carrying the tag (staff: any owner's; others: only
    their own). None: refused."""
    try:
        owner = access.get_visible(user, page).owner_name
    except NotFound:
        return None
    runs = access.visible(user).exclude(status="deleted").filter(owner_name=owner)
    return owner if runs.filter(tags__contains=[tag]).exists() else None


class AccountBound(AsyncJsonWebsocketConsumer):
    """A socket that ends with its session and its account (web.live.sessions): it joins the
    account's group, re-checks when told and every NNT_SOCKET_RECHECK_S seconds, and on an
    ended session or account leaves its groups and closes with ENDED."""

    ended = False
    account: str | None = None
    watch: asyncio.Task[None] | None = None

    async def bind_account(self) -> None:
        """Join the account's group and start the periodic re-check."""
        self.account = account_group(self.scope["user"].pk)
        await self.channel_layer.group_add(self.account, self.channel_name)
        self.watch = asyncio.ensure_future(self._recheck(settings.NNT_SOCKET_RECHECK_S))

    async def _recheck(self, every: float) -> None:
        while not self.ended:
            await asyncio.sleep(every)
            try:
                valid = await sessions.still_valid(self.scope)
            except Exception as exc:  # a database hiccup: try again next time
                log.warning("socket re-check failed: %s", exc)
                continue
            if not valid:
                await self.end()

    async def leave_groups(self) -> None:
        """Leave the groups that bring data (each consumer its own)."""

    async def unbind(self) -> None:
        """Leave every group and stop the re-check."""
        await self.leave_groups()
        if self.watch is not None and self.watch is not asyncio.current_task():
            self.watch.cancel()
        if self.account:
            await self.channel_layer.group_discard(self.account, self.channel_name)
            self.account = None

    async def end(self) -> None:
        """The session or the account ended: nothing more is sent; close."""
        if self.ended:
            return
        self.ended = True
        await self.unbind()
        log.info("websocket of user %s closed: session or account ended", self.scope["user"].pk)
        await self.close(code=sessions.ENDED)

    async def account_check(self, event: dict[str, Any]) -> None:
        """The account changed: close unless it still holds."""
        if not self.ended and not await sessions.still_valid(self.scope):
            await self.end()

    async def session_ended(self, event: dict[str, Any]) -> None:
        """A session of the account logged out: close if it is this socket's."""
        key = getattr(self.scope.get("session"), "session_key", None)
        if key and event.get("session_key") == key:
            await self.end()

    async def disconnect(self, code: int) -> None:
        """Leave every group."""
        await self.unbind()

    async def live_message(self, event: dict[str, Any]) -> None:
        """Forward one bridge payload to the browser, unless the socket has ended."""
        if not self.ended:
            await self.send_json(event["payload"])


class SimulationConsumer(AccountBound):
    """Joins `sim-<id>` if the user may see the simulation; forwards live payloads.

    With `?since=<epoch>` it first sends the epochs logged after that one. The page may then ask for more with `{"subscribe": {"simulation": id}}` (a run to compare
    with) or `{"subscribe": {"tag": t}}` (a tag group); each is checked like the first.
    """

    groups_joined: list[str]

    async def connect(self) -> None:
        """Accept active owners and staff only."""
        self.groups_joined = []
        simulation_id = self.scope["url_route"]["kwargs"]["simulation_id"]
        user = self.scope.get("user")
        if not sessions.allowed(user) or not await _may_see(user, simulation_id):
            log.info("websocket refused for simulation %s", simulation_id)
            await self.close(code=FORBIDDEN)
            return
        await self._join(simulation_group(simulation_id))
        await self.bind_account()
        await self.accept()
        since = _since(self.scope)
        if since is not None:
            # Epochs logged between the page's render and this socket: sent once, in order,
            # so the chart has no gap (and on every reconnect, from the page's last epoch).
            points = await _points_since(simulation_id, since)
            if points:
                await self.send_json(
                    {"kind": "epochs", "simulation_id": str(simulation_id), "points": points}
                )

    async def _join(self, group: str) -> None:
        if group not in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
            self.groups_joined.append(group)

    async def leave_groups(self) -> None:
        """Leave the simulation's group and every subscription."""
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = []

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Subscriptions to another of the user's runs or to one of their tags; else ignored."""
        wanted = content.get("subscribe") if isinstance(content, dict) else None
        if not isinstance(wanted, dict) or self.ended:
            return
        user = self.scope.get("user")
        group, answer = None, {"kind": "subscription", "ok": False, "request": wanted}
        if len(self.groups_joined) > MAX_EXTRA_GROUPS:
            answer["reason"] = "too many subscriptions"
        elif "simulation" in wanted:
            try:
                sid = uuid.UUID(str(wanted["simulation"]))
            except ValueError:
                sid = None
            if sid is not None and await _may_see(user, sid):
                group = simulation_group(sid)
        elif isinstance(wanted.get("tag"), str):
            page = self.scope["url_route"]["kwargs"]["simulation_id"]
            owner = await _tag_owner(user, page, wanted["tag"])
            group = tag_group(owner, wanted["tag"]) if owner is not None else None
        if group:
            await self._join(group)
            answer["ok"] = True
        await self.send_json(answer)


class OneGroup(AccountBound):
    """A page that listens on one group chosen from its user (`group_for`) and never speaks."""

    group: str | None = None

    def group_for(self, user: Any) -> str:
        """The group this user's page joins."""
        raise NotImplementedError

    async def connect(self) -> None:
        """Accept signed-in, active users only."""
        user = self.scope.get("user")
        if not sessions.allowed(user):
            await self.close(code=FORBIDDEN)
            return
        self.group = self.group_for(user)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.bind_account()
        await self.accept()

    async def leave_groups(self) -> None:
        """Leave the group."""
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            self.group = None

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Browsers only listen."""


class UserConsumer(OneGroup):
    """The simulation list: joins `user-<username>`, which gets the status and row changes of
    all their runs; staff join the staff group instead, which gets those of every run (their
    list shows all runs, and one group means no duplicates)."""

    def group_for(self, user: Any) -> str:
        return STAFF_GROUP if user.is_staff else user_group(user.get_username())
