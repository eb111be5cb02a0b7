"""WebSockets with the real database: the list's user group, and what a simulation page may add
to its socket (another run to compare with, a tag group) — never another user's."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name="ws", **fields
    )


def _comm(path: str, user: Any) -> WebsocketCommunicator:
    from channels.routing import URLRouter

    from web.live.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    return comm


def _raw(**update: Any) -> bytes:
    return json.dumps(update).encode()


def test_it_pushes_status_of_all_own_runs_to_the_list(make_user: Any) -> None:
    from web.live.bridge import forward

    ada, bob = make_user(), make_user()
    mine = _sim(ada)

    async def scenario() -> tuple[Any, bool]:
        comm = _comm("/ws/simulations/", ada)
        assert (await comm.connect())[0]
        await forward(
            get_channel_layer(),
            _raw(
                kind="status",
                simulation_id=str(uuid.uuid4()),
                owner=bob.get_username(),
                status={"status": "running"},
            ),
        )
        await forward(
            get_channel_layer(),
            _raw(
                kind="status",
                simulation_id=str(mine.id),
                owner=ada.get_username(),
                status={"status": "paused", "epoch": 2, "total_epochs": 4},
            ),
        )
        got = await comm.receive_json_from(timeout=5)
        nothing_else = await comm.receive_nothing(timeout=0.3)
        await comm.disconnect()
        return got, nothing_else

    got, nothing_else = asyncio.run(scenario())
    assert got == {
        "kind": "status",
        "simulation_id": str(mine.id),
        "status": {"status": "paused", "epoch": 2, "total_epochs": 4},
    }
    assert nothing_else, "another user's status reached the list"


def test_it_refuses_the_list_socket_to_anonymous_users() -> None:
    from django.contrib.auth.models import AnonymousUser

    async def scenario() -> bool:
        comm = _comm("/ws/simulations/", AnonymousUser())
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert asyncio.run(scenario()) is False


def test_it_never_subscribes_a_page_to_another_users_run_or_tag(make_user: Any) -> None:
    from web.live.bridge import forward

    ada, bob = make_user(), make_user()
    tag = f"t{uuid.uuid4().hex[:6]}"
    mine, other_mine, theirs = _sim(ada, tags=[tag]), _sim(ada), _sim(bob, tags=["bobs"])

    async def scenario() -> list[Any]:
        comm = _comm(f"/ws/simulations/{mine.id}/", ada)
        assert (await comm.connect())[0]
        answers = []
        for wanted in (
            {"simulation": str(theirs.id)},
            {"tag": "bobs"},
            {"simulation": "not-a-uuid"},
            {"simulation": str(other_mine.id)},
            {"tag": tag},
        ):
            await comm.send_json_to({"subscribe": wanted})
            answers.append((await comm.receive_json_from(timeout=5))["ok"])
        layer = get_channel_layer()
        await forward(
            layer,
            _raw(
                kind="epochs",
                simulation_id=str(theirs.id),
                points=[{"epoch": 1, "values": {"loss": 9.0}}],
            ),
        )
        await forward(
            layer,
            _raw(kind="tag", tag="bobs", owner=bob.get_username(), aggregates=[{"metric": "loss"}]),
        )
        answers.append(await comm.receive_nothing(timeout=0.3))
        await forward(
            layer,
            _raw(
                kind="epochs",
                simulation_id=str(other_mine.id),
                points=[{"epoch": 1, "values": {"loss": 0.5}}],
            ),
        )
        answers.append((await comm.receive_json_from(timeout=5))["simulation_id"])
        await forward(
            layer,
            _raw(
                kind="tag",
                tag=tag,
                owner=ada.get_username(),
                aggregates=[{"metric": "loss", "epoch": 1, "mean": 0.5}],
            ),
        )
        answers.append((await comm.receive_json_from(timeout=5))["tag"])
        await comm.disconnect()
        return answers

    assert asyncio.run(scenario()) == [
        False,
        False,
        False,
        True,
        True,
        True,
        str(other_mine.id),
        tag,
    ]


def test_it_never_sends_a_user_another_users_aggregate_of_the_same_tag(make_user: Any) -> None:
    from web.live.bridge import forward

    ada, bob = make_user(), make_user()
    tag = f"shared{uuid.uuid4().hex[:6]}"
    _sim(ada, tags=[tag])
    bobs = _sim(bob, tags=[tag])

    def update(owner: Any, mean: float) -> bytes:
        return _raw(
            kind="tag",
            tag=tag,
            owner=owner.get_username(),
            aggregates=[{"metric": "loss", "epoch": 1, "count": 1, "mean": mean}],
        )

    async def scenario() -> tuple[bool, bool, Any]:
        comm = _comm(f"/ws/simulations/{bobs.id}/", bob)
        assert (await comm.connect())[0]
        await comm.send_json_to({"subscribe": {"tag": tag}})
        subscribed = (await comm.receive_json_from(timeout=5))["ok"]
        layer = get_channel_layer()
        await forward(layer, update(ada, 0.1))  # ada's runs with the same tag
        await forward(layer, _raw(kind="tag", tag=tag, aggregates=[{"metric": "loss"}]))
        nothing = await comm.receive_nothing(timeout=0.3)
        await forward(layer, update(bob, 9.0))
        got = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return subscribed, nothing, got

    subscribed, nothing, got = asyncio.run(scenario())
    assert subscribed
    assert nothing, "bob's page received ada's aggregate of the tag they share"
    assert got == {
        "kind": "tag",
        "tag": tag,
        "aggregates": [{"metric": "loss", "epoch": 1, "count": 1, "mean": 9.0}],
    }


def test_it_refuses_a_page_socket_for_another_users_run(make_user: Any) -> None:
    theirs, ada = _sim(make_user()), make_user()

    async def scenario() -> bool:
        comm = _comm(f"/ws/simulations/{theirs.id}/", ada)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert asyncio.run(scenario()) is False


def test_it_sends_the_epochs_a_page_missed_before_its_socket_opened(make_user: Any) -> None:
    from datetime import UTC, datetime

    from django.db import connection

    ada = make_user()
    sim = _sim(ada)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(sim.id, e, m, e / 10, at) for e in (1, 2, 3) for m in ("loss", "accuracy")],
        )

    async def scenario() -> Any:
        comm = _comm(f"/ws/simulations/{sim.id}/?since=1", ada)
        assert (await comm.connect())[0]
        got = await comm.receive_json_from(timeout=5)
        await comm.disconnect()
        return got

    got = asyncio.run(scenario())
    assert got == {
        "kind": "epochs",
        "simulation_id": str(sim.id),
        "points": [
            {"epoch": 2, "values": {"accuracy": 0.2, "loss": 0.2}},
            {"epoch": 3, "values": {"accuracy": 0.3, "loss": 0.3}},
        ],
    }
