"""The simulation list's socket with the real database: staff receive every run's updates, and
changes only the web sees (tags, new runs created here) reach the owner's and the staff's lists
at once, never another user's."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name="listed", **fields
    )


def _list_socket(user: Any) -> WebsocketCommunicator:
    from channels.routing import URLRouter

    from web.live.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/simulations/")
    comm.scope["user"] = user
    return comm


def _token(client: Any, user: Any) -> dict[str, str]:
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": "pw-long-enough-1"},
        content_type="application/json",
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['token']}"}


async def _open(*users: Any) -> list[WebsocketCommunicator]:
    socks = [_list_socket(u) for u in users]
    for sock in socks:
        assert (await sock.connect())[0]
    return socks


async def _close(socks: list[WebsocketCommunicator]) -> None:
    for sock in socks:
        await sock.disconnect()


def test_it_sends_staff_lists_the_status_of_every_users_run_once(make_user: Any) -> None:
    from web.live.bridge import forward

    ada, carl, admin = make_user(), make_user(), make_user(staff=True)
    run = _sim(ada)
    raw = json.dumps(
        {
            "kind": "status",
            "simulation_id": str(run.id),
            "owner": ada.get_username(),
            "status": {"status": "running", "epoch": 1, "total_epochs": 4},
        }
    ).encode()

    async def scenario() -> tuple[Any, bool, Any, bool]:
        staff, owner, other = await _open(admin, ada, carl)
        await forward(get_channel_layer(), raw)
        to_staff = await staff.receive_json_from(timeout=5)
        once = await staff.receive_nothing(timeout=0.3)
        to_owner = await owner.receive_json_from(timeout=5)
        nothing = await other.receive_nothing(timeout=0.3)
        await _close([staff, owner, other])
        return to_staff, once, to_owner, nothing

    to_staff, once, to_owner, nothing = asyncio.run(scenario())
    expected = {
        "kind": "status",
        "simulation_id": str(run.id),
        "status": {"status": "running", "epoch": 1, "total_epochs": 4},
    }
    assert to_staff == expected and to_owner == expected
    assert once, "the staff list got the status twice"
    assert nothing, "another user's list got the status"


def test_it_pushes_tag_changes_to_the_owners_and_staff_lists(client: Any, make_user: Any) -> None:
    ada, carl, admin = make_user(), make_user(), make_user(staff=True)
    run = _sim(ada, tags=["old"])
    auth = _token(client, ada)
    url = f"/api/simulations/{run.id}/tags"

    def add(tag: str) -> int:
        return client.post(url, {"tag": tag}, content_type="application/json", **auth).status_code

    async def scenario() -> tuple[Any, Any, bool, Any]:
        owner, staff, other = await _open(ada, admin, carl)
        assert await sync_to_async(add)("new; 'tag'") == 200
        to_owner = await owner.receive_json_from(timeout=5)
        to_staff = await staff.receive_json_from(timeout=5)
        nothing = await other.receive_nothing(timeout=0.3)
        assert await sync_to_async(add)("old") == 200  # no change: nothing is pushed
        unchanged = await owner.receive_nothing(timeout=0.3)
        await _close([owner, staff, other])
        return to_owner, to_staff, nothing and unchanged, None

    to_owner, to_staff, quiet, _ = asyncio.run(scenario())
    assert to_owner == to_staff
    assert to_owner["kind"] == "simulation" and to_owner["simulation_id"] == str(run.id)
    row = to_owner["simulation"]
    assert row["tags"] == ["old", "new; 'tag'"] and row["name"] == "listed"
    assert row["owner"] == ada.get_username() and row["status"] == "queued"
    assert quiet, "another user's list, or an unchanged tag, produced a push"


def test_it_shows_runs_created_in_the_web_on_open_lists_at_once(
    client: Any, make_user: Any, real_kafka: str
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    ada, carl = make_user(), make_user()
    auth = _token(client, ada)
    name = f"live-{uuid.uuid4().hex[:6]}"
    config = {
        "name": name,
        "total_epochs": 3,
        "learning_rates": [0.1, 0.01],
        "tags": ["fresh"],
        "dataset_train": "https://example.org/train.csv",
    }
    model = b'{"class_name": "Sequential", "config": {"name": "m", "layers": []}}'

    def create() -> Any:
        files = {"model": SimpleUploadedFile("model.json", model)}
        return client.post("/api/experiments", {"config": json.dumps(config)} | files, **auth)

    async def scenario() -> tuple[Any, list[Any], bool]:
        owner, other = await _open(ada, carl)
        resp = await sync_to_async(create)()
        got = [await owner.receive_json_from(timeout=10) for _ in range(2)]
        nothing = await other.receive_nothing(timeout=0.3)
        await _close([owner, other])
        return resp, got, nothing

    resp, got, nothing = asyncio.run(scenario())
    assert resp.status_code == 201, resp.content
    ids = {str(s) for s in resp.json()["simulations"]}
    assert {m["simulation_id"] for m in got} == ids
    for message in got:
        row = message["simulation"]
        assert message["kind"] == "simulation" and row["status"] == "queued"
        assert row["name"].startswith(name) and "fresh" in row["tags"] and row["total_epochs"] == 3
        assert row["created_at"]
    assert nothing
