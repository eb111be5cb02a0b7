"""Sockets end with their session and account (web/live/sessions.py): disabling (console page,
API, Django admin), deleting, logging out or changing the password closes that user's open
WebSockets within seconds, and nothing more reaches them; other users' sockets stay open.

The sockets go through the product's ASGI application with real session cookies, as a browser
opens them; the changes are made through the real pages and API calls."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.test import Client, override_settings

ENDED = 4401
PASSWORD = "pw-long-enough-1"


def _browser(user: Any) -> tuple[Client, str]:
    """A logged-in browser of its own and its session cookie."""
    browser = Client()
    browser.force_login(user)
    return browser, str(browser.cookies["sessionid"].value)


def _sim(owner: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name="ws", status="finished"
    )


async def _open(path: str, session: str) -> WebsocketCommunicator | None:
    """A socket as the page opens it; None if refused."""
    from web.asgi import application

    headers = [
        (b"origin", b"http://testserver"),
        (b"host", b"testserver"),
        (b"cookie", f"sessionid={session}".encode()),
    ]
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, _ = await comm.connect(timeout=10)
    return comm if connected else None


async def _ended(comm: WebsocketCommunicator, timeout: float = 5) -> bool:
    """Closed by the server as ended, and silent after that."""
    try:
        out = await comm.receive_output(timeout)
    except TimeoutError:
        return False
    return out == {"type": "websocket.close", "code": ENDED}


async def _status(simulation: Any) -> None:
    """One live status update of the run, as the bridge forwards it from `nnt.live`."""
    from web.live.bridge import forward

    update = {
        "kind": "status",
        "simulation_id": str(simulation.id),
        "owner": simulation.owner_name,
        "status": {"status": "running", "epoch": 1, "total_epochs": 4},
    }
    await forward(get_channel_layer(), json.dumps(update).encode())


async def _close_all(*comms: WebsocketCommunicator | None) -> None:
    for comm in comms:
        if comm is not None:
            await comm.disconnect()


def test_it_closes_a_disabled_users_sockets_and_keeps_the_others_open(make_user: Any) -> None:
    from web.accounts.models import ApiToken

    ada, bob, admin = make_user(), make_user(), make_user(staff=True)
    adas, bobs = _sim(ada), _sim(bob)
    _, ada_session = _browser(ada)
    _, bob_session = _browser(bob)
    _, admin_token = ApiToken.issue(admin)

    async def scenario() -> dict[str, Any]:
        ada_list = await _open("/ws/simulations/", ada_session)
        ada_page = await _open(f"/ws/simulations/{adas.id}/", ada_session)
        bob_list = await _open("/ws/simulations/", bob_session)
        assert ada_list and ada_page and bob_list
        resp = await sync_to_async(Client().patch)(
            f"/api/admin/users/{ada.pk}",
            {"is_active": False},
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {admin_token}",
        )
        seen = {"disabled": resp.status_code}
        seen["ada closed"] = [await _ended(ada_list), await _ended(ada_page)]
        await _status(adas)
        await _status(bobs)
        seen["ada after"] = [await ada_list.receive_nothing(0.3), await ada_page.receive_nothing()]
        seen["bob got"] = (await bob_list.receive_json_from(timeout=5))["simulation_id"]
        seen["ada again"] = await _open("/ws/simulations/", ada_session)
        await _close_all(ada_list, ada_page, bob_list, seen["ada again"])
        return seen

    seen = asyncio.run(scenario())
    assert seen["disabled"] == 200
    assert seen["ada closed"] == [True, True], "a disabled user's sockets stayed open"
    assert seen["ada after"] == [True, True], "data reached a disabled user"
    assert seen["bob got"] == str(bobs.id), "another user's socket was closed"
    assert seen["ada again"] is None, "a disabled user opened a socket"


def test_it_closes_the_sockets_of_a_session_that_logs_out(make_user: Any) -> None:
    ada = make_user()
    leaving, leaving_session = _browser(ada)
    _, staying_session = _browser(ada)

    async def scenario() -> tuple[bool, bool]:
        gone = await _open("/ws/simulations/", leaving_session)
        kept = await _open("/ws/simulations/", staying_session)
        assert gone and kept
        resp = await sync_to_async(leaving.post)("/accounts/logout/")
        assert resp.status_code == 302
        result = await _ended(gone), await kept.receive_nothing(1.0)
        await _close_all(gone, kept)
        return result

    assert asyncio.run(scenario()) == (True, True), "(logged-out session closed, other open)"


def test_a_password_change_closes_the_users_sockets_and_only_its_session_reopens(
    make_user: Any,
) -> None:
    ada = make_user(password=PASSWORD)
    changing, changing_session = _browser(ada)
    _, other_session = _browser(ada)

    async def scenario() -> list[Any]:
        other = await _open("/ws/simulations/", other_session)
        own = await _open("/ws/simulations/", changing_session)
        assert other and own
        resp = await sync_to_async(changing.post)(
            "/accounts/password/",
            {
                "old_password": PASSWORD,
                "new_password1": "Another-Quartz-4711",
                "new_password2": "Another-Quartz-4711",
            },
        )
        assert resp.status_code == 302, resp.content[:300]
        closed = [await _ended(other), await _ended(own)]
        # The page reconnects: Django gave the changing browser a new session key.
        renewed = str(changing.cookies["sessionid"].value)
        again = [
            await _open("/ws/simulations/", other_session),
            await _open("/ws/simulations/", renewed),
        ]
        await _close_all(other, own, *again)
        return [closed, [sock is not None for sock in again]]

    closed, reopened = asyncio.run(scenario())
    assert closed == [True, True], "sockets of the old password stayed open"
    assert reopened == [False, True], "(other session refused, the changing browser's accepted)"


def test_disabling_on_the_console_page_or_in_django_admin_closes_sockets(make_user: Any) -> None:
    from django.contrib.auth import get_user_model

    ada, bob, admin = make_user(), make_user(), make_user(staff=True)
    get_user_model().objects.filter(pk=admin.pk).update(is_superuser=True)
    console, _ = _browser(admin)
    _, ada_session = _browser(ada)
    _, bob_session = _browser(bob)

    def django_admin_disable(user: Any) -> int:
        """The change form of Django's admin, posted with `is_active` unticked."""
        user.refresh_from_db()
        form = {
            "username": user.get_username(),
            "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
            "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
            "is_staff": "",
        }
        form = {k: v for k, v in form.items() if v}
        return console.post(f"/admin/auth/user/{user.pk}/change/", form).status_code

    async def scenario() -> list[Any]:
        ada_list = await _open("/ws/simulations/", ada_session)
        bob_list = await _open("/ws/simulations/", bob_session)
        assert ada_list and bob_list
        page = await sync_to_async(console.post)(
            f"/console/users/{ada.pk}/active/", {"active": "0"}
        )
        by_page = [page.status_code, await _ended(ada_list)]
        by_admin = [await sync_to_async(django_admin_disable)(bob), await _ended(bob_list)]
        await _close_all(ada_list, bob_list)
        return [by_page, by_admin]

    by_page, by_admin = asyncio.run(scenario())
    assert by_page == [302, True], "console page"
    assert by_admin == [302, True], "Django admin"
    assert not get_user_model().objects.get(pk=bob.pk).is_active


def test_deleting_a_user_or_revoking_staff_closes_their_sockets(make_user: Any) -> None:
    from web.accounts.models import ApiToken

    ada, former_admin, admin = make_user(), make_user(staff=True), make_user(staff=True)
    adas, someone_elses = _sim(ada), _sim(make_user())
    _, ada_session = _browser(ada)
    _, staff_session = _browser(former_admin)
    headers = {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(admin)[1]}"}

    async def scenario() -> list[Any]:
        ada_page = await _open(f"/ws/simulations/{adas.id}/", ada_session)
        staff_page = await _open(f"/ws/simulations/{someone_elses.id}/", staff_session)
        assert ada_page and staff_page
        api = Client()
        deleted = await sync_to_async(api.delete)(f"/api/admin/users/{ada.pk}", **headers)
        revoked = await sync_to_async(api.patch)(
            f"/api/admin/users/{former_admin.pk}",
            {"is_staff": False},
            content_type="application/json",
            **headers,
        )
        result = [
            [deleted.status_code, await _ended(ada_page)],
            [revoked.status_code, await _ended(staff_page)],
        ]
        await _status(someone_elses)
        result.append(await staff_page.receive_nothing(0.3))
        await _close_all(ada_page, staff_page)
        return result

    deleted, revoked, silent = asyncio.run(scenario())
    assert deleted == [204, True], "deleted user"
    assert revoked == [200, True], "former staff watching another user's run"
    assert silent, "a former admin still received another user's run"


@override_settings(NNT_SOCKET_RECHECK_S=0.3)
def test_a_change_made_elsewhere_closes_sockets_at_the_next_recheck(make_user: Any) -> None:
    from django.contrib.auth import get_user_model

    ada, bob = make_user(), make_user()
    _, ada_session = _browser(ada)
    _, bob_session = _browser(bob)

    async def scenario() -> tuple[bool, bool]:
        ada_list = await _open("/ws/simulations/", ada_session)
        bob_list = await _open("/ws/simulations/", bob_session)
        assert ada_list and bob_list
        # another process (`nntracker manage`, a second web server) or a bulk update: no signal
        # reaches this process's sockets
        users = get_user_model().objects.filter(pk=ada.pk)
        await sync_to_async(users.update)(is_active=False)
        result = await _ended(ada_list, timeout=5), await bob_list.receive_nothing(1.0)
        await _close_all(ada_list, bob_list)
        return result

    assert asyncio.run(scenario()) == (True, True), "(disabled elsewhere closed, other open)"


def test_a_socket_of_an_inactive_user_is_refused_without_a_session(make_user: Any) -> None:
    from django.contrib.auth import get_user_model

    from web.live.routing import websocket_urlpatterns

    ada = make_user()
    get_user_model().objects.filter(pk=ada.pk).update(is_active=False)
    ada.refresh_from_db()

    async def scenario() -> bool:
        from channels.routing import URLRouter

        comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/simulations/")
        comm.scope["user"] = ada  # what a stale scope would hold
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert asyncio.run(scenario()) is False
