"""The web API refuses, with 409 and why, a lifecycle action the run's status does not take
(schemas/lifecycle.py), sends nothing for it, and skips such runs in a bulk action; the pages
carry the same table for their buttons."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from schemas import lifecycle


class Recording:
    """A publisher that keeps what the web sends."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append(json.loads(value))


@pytest.fixture()
def published() -> Any:
    from web.simulations import commands

    fake = Recording()
    commands.set_publisher(fake)
    yield fake
    commands.set_publisher(None)


def _sim(owner: Any, status: str) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name=f"{status} run", status=status
    )


def _bearer(user: Any) -> dict[str, str]:
    from web.accounts.models import ApiToken

    return {"HTTP_AUTHORIZATION": f"Bearer {ApiToken.issue(user)[1]}"}


def _call(client: Any, action: str, sim: Any, auth: dict[str, str]) -> Any:
    url = f"/api/simulations/{sim.id}"
    if action == "delete":
        return client.delete(url, **auth)
    return client.post(f"{url}/{action}", **auth)


@pytest.mark.parametrize("status", lifecycle.STATUSES)
@pytest.mark.parametrize("action", lifecycle.ACTIONS)
def test_it_sends_only_what_the_status_allows(
    client: Any, make_user: Any, published: Recording, action: str, status: str
) -> None:
    ada = make_user()
    sim = _sim(ada, status)
    resp = _call(client, action, sim, _bearer(ada))
    if lifecycle.allowed(action, status):
        assert resp.status_code == 202, resp.content
        assert [(c["type"], c["simulation_id"]) for c in published.sent] == [(action, str(sim.id))]
    else:
        assert resp.status_code == 409, resp.content
        detail = resp.json()["detail"]
        assert detail == lifecycle.refusal(action, status) and status in detail
        assert published.sent == []


def test_a_bulk_action_skips_runs_that_cannot_take_it(
    client: Any, make_user: Any, published: Recording
) -> None:
    ada = make_user()
    auth = _bearer(ada)
    running, finished = _sim(ada, "running"), _sim(ada, "finished")
    body = {"ids": [str(running.id), str(finished.id)], "action": "pause"}
    resp = client.post("/api/simulations/bulk", body, content_type="application/json", **auth)
    assert resp.status_code == 202, resp.content
    out = resp.json()
    assert [c["simulation_id"] for c in out["commands"]] == [str(running.id)]
    assert out["skipped"] == [
        {
            "simulation_id": str(finished.id),
            "status": "finished",
            "reason": "cannot pause a finished simulation; pause takes running ones",
        }
    ]
    assert [c["simulation_id"] for c in published.sent] == [str(running.id)]

    body = {"ids": [str(finished.id)], "action": "stop"}
    none = client.post("/api/simulations/bulk", body, content_type="application/json", **auth)
    assert none.status_code == 409 and "finished" in none.json()["detail"]
    assert len(published.sent) == 1


def test_every_page_carries_the_rules_its_buttons_follow(client: Any, make_user: Any) -> None:
    ada = make_user()
    client.force_login(ada)
    sim = _sim(ada, "paused")
    for url in ("/simulations/", f"/simulations/{sim.id}/", "/"):
        html = client.get(url).content.decode()
        found = re.search(
            r'<script id="nnt-lifecycle" type="application/json">(.*?)</script>', html
        )
        assert found, url
        assert json.loads(found[1]) == lifecycle.as_json(), url
