"""REST API against real PostgreSQL and Kafka: tokens, listing, detail, metrics, lifecycle
commands read back from nnt.commands, auth and CSRF over every registered endpoint."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    defaults = {
        "name": f"run {uuid.uuid4().hex[:6]}",
        "owner_name": owner.get_username(),
        "total_epochs": 10,
    }
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _token(client: Any, user: Any) -> str:
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": "pw-long-enough-1"},
        content_type="application/json",
    )
    assert resp.status_code == 201, resp.content
    return resp.json()["token"]


def _bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def test_it_issues_a_token_and_stores_only_its_hash(client: Any, make_user: Any) -> None:
    from web.accounts.models import ApiToken

    user = make_user()
    token = _token(client, user)
    row = ApiToken.objects.get(user=user)
    assert token not in (row.key_hash, row.prefix) and len(row.key_hash) == 64


def test_it_refuses_wrong_passwords(client: Any, make_user: Any) -> None:
    user = make_user()
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": "nope"},
        content_type="application/json",
    )
    assert resp.status_code == 401


def test_it_lists_only_own_simulations_with_a_token(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    mine, theirs = _sim(ada, tags=["x"]), _sim(bob)
    resp = client.get("/api/simulations", **_bearer(_token(client, ada)))
    assert resp.status_code == 200
    ids = [s["id"] for s in resp.json()]
    assert ids == [str(mine.id)] and str(theirs.id) not in ids
    assert client.get("/api/simulations").status_code == 401
    assert client.get("/api/simulations", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401


def test_it_shows_staff_everything_and_filters(client: Any, make_user: Any) -> None:
    ada, admin = make_user(), make_user(staff=True)
    tag = f"t{uuid.uuid4().hex[:6]}"
    a = _sim(ada, tags=[tag], status="running")
    _sim(ada, tags=[tag], status="finished")
    token = _token(client, admin)
    resp = client.get(f"/api/simulations?tag={tag}&status=running", **_bearer(token))
    assert [s["id"] for s in resp.json()] == [str(a.id)]
    assert resp.json()[0]["owner"] == ada.get_username()


def test_it_hides_other_users_simulations(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    theirs = _sim(bob)
    token = _token(client, ada)
    assert client.get(f"/api/simulations/{theirs.id}", **_bearer(token)).status_code == 404
    detail = client.get(f"/api/simulations/{theirs.id}", **_bearer(_token(client, bob))).json()
    assert detail["status"] == "queued" and detail["total_epochs"] == 10


def test_it_returns_metrics_latest_value_per_epoch(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    t0, t1 = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 1, 2, tzinfo=UTC)
    rows = [(sim.id, e, "loss", 1.0 / e, t0) for e in range(1, 21)]
    rows += [(sim.id, 20, "loss", 0.01, t1), (sim.id, 1, "val_accuracy", 0.5, t0)]
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", rows)
    token = _token(client, ada)
    data = client.get(f"/api/simulations/{sim.id}/metrics", **_bearer(token)).json()
    assert data["loss"]["epochs"] == list(range(1, 21))
    assert data["loss"]["values"][-1] == 0.01
    assert data["val_accuracy"] == {"epochs": [1], "values": [0.5]}
    small = client.get(f"/api/simulations/{sim.id}/metrics?max_points=5", **_bearer(token)).json()
    assert len(small["loss"]["epochs"]) == 5 and small["loss"]["epochs"][-1] == 20


def test_it_requires_csrf_for_session_posts(make_user: Any) -> None:
    from django.test import Client

    ada = make_user()
    sim = _sim(ada)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(ada)
    assert browser.get("/api/simulations").status_code == 200
    assert browser.post(f"/api/simulations/{sim.id}/pause").status_code == 403


def test_it_answers_503_when_kafka_is_down(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    resp = client.post(f"/api/simulations/{sim.id}/stop", **_bearer(_token(client, ada)))
    assert resp.status_code == 503
    assert "Kafka" in resp.json()["detail"]


def test_it_serves_the_openapi_docs(client: Any) -> None:
    assert client.get("/api/docs").status_code == 200
    paths = client.get("/api/openapi.json").json()["paths"]
    assert {"/api/tokens", "/api/experiments", "/api/simulations/{simulation_id}/metrics"} <= set(
        paths
    )


LIFECYCLE = [
    ("post", "/pause", "pause"),
    ("post", "/resume", "resume"),
    ("post", "/stop", "stop"),
    ("delete", "", "delete"),
]


@pytest.mark.parametrize(("method", "suffix", "kind"), LIFECYCLE)
def test_it_publishes_each_lifecycle_command_to_kafka(
    client: Any, make_user: Any, command_log: Any, method: str, suffix: str, kind: str
) -> None:
    ada = make_user()
    sim = _sim(ada, status="paused" if kind == "resume" else "running")  # a status that takes it
    call = getattr(client, method)
    resp = call(f"/api/simulations/{sim.id}{suffix}", **_bearer(_token(client, ada)))
    assert resp.status_code == 202, resp.content
    body = resp.json()
    assert body["type"] == kind and body["simulation_id"] == str(sim.id)
    [command] = command_log.for_key(str(sim.id))
    assert command.type == kind and str(command.command_id) == body["command_id"]
    assert command.simulation_id == sim.id and command.issued_by == ada.get_username()


# Every operation on one simulation, with what it needs besides the id. A new endpoint under
# /api/simulations/{simulation_id} fails test_it_covers_every_simulation_endpoint until it is
# added here, so it is checked for hiding other users' runs like the rest.
SIMULATION_OPS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/simulations/{simulation_id}"): {},
    ("DELETE", "/api/simulations/{simulation_id}"): {},
    ("POST", "/api/simulations/{simulation_id}/pause"): {},
    ("POST", "/api/simulations/{simulation_id}/resume"): {},
    ("POST", "/api/simulations/{simulation_id}/stop"): {},
    ("POST", "/api/simulations/{simulation_id}/tags"): {"json": {"tag": "stolen"}},
    ("DELETE", "/api/simulations/{simulation_id}/tags"): {"json": {"tag": "bobs"}},
    ("GET", "/api/simulations/{simulation_id}/metrics"): {},
    ("GET", "/api/simulations/{simulation_id}/summary"): {},
    ("GET", "/api/simulations/{simulation_id}/tensors"): {},
    ("GET", "/api/simulations/{simulation_id}/tensors/values"): {"query": {"key": "dense.kernel"}},
    ("GET", "/api/simulations/{simulation_id}/compare"): {"query": {"other": "OWN"}},
    ("GET", "/api/simulations/{simulation_id}/export"): {},
    ("GET", "/api/simulations/{simulation_id}/export/estimate"): {},
    ("GET", "/api/simulations/{simulation_id}/model"): {},
    ("GET", "/api/simulations/{simulation_id}/batches"): {},
    ("GET", "/api/simulations/{simulation_id}/resources"): {},
    ("GET", "/api/simulations/{simulation_id}/timeline"): {},
    ("GET", "/api/simulations/{simulation_id}/diagnoses"): {},
}
# Answer without credentials: everything else is 401 for anonymous callers.
PUBLIC_OPS = {("POST", "/api/tokens"), ("POST", "/api/accounts")}


def _operations(client: Any) -> set[tuple[str, str]]:
    paths = client.get("/api/openapi.json").json()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() for method in ops}


def _call(client: Any, method: str, url: str, spec: dict[str, Any], **extra: Any) -> Any:
    if "query" in spec:
        url += "?" + urlencode(spec["query"])
    if "json" in spec:
        extra |= {"data": json.dumps(spec["json"]), "content_type": "application/json"}
    return client.generic(method, url, **extra)


def test_it_covers_every_simulation_endpoint(client: Any) -> None:
    registered = {op for op in _operations(client) if "{simulation_id}" in op[1]}
    assert registered == set(SIMULATION_OPS), "add new endpoints to SIMULATION_OPS"


@pytest.mark.parametrize(("method", "path"), sorted(SIMULATION_OPS))
def test_it_answers_404_for_another_users_simulation(
    client: Any, make_user: Any, command_log: Any, method: str, path: str
) -> None:
    ada, bob = make_user(), make_user()
    theirs, mine = _sim(bob, tags=["bobs"], status="running"), _sim(ada)
    spec = SIMULATION_OPS[(method, path)]
    if spec.get("query", {}).get("other") == "OWN":
        spec = {"query": {"other": str(mine.id)}}
    url = path.replace("{simulation_id}", str(theirs.id))
    resp = _call(client, method, url, spec, **_bearer(_token(client, ada)))
    assert resp.status_code == 404, resp.content
    assert str(theirs.id) not in resp.content.decode().replace(f"no simulation {theirs.id}", "")
    theirs.refresh_from_db()
    assert theirs.tags == ["bobs"] and theirs.status == "running"
    assert command_log.for_key(str(theirs.id), expect=0) == []


def test_it_hides_another_users_run_as_the_other_side_of_a_comparison(
    client: Any, make_user: Any
) -> None:
    ada, bob = make_user(), make_user()
    mine, theirs = _sim(ada), _sim(bob)
    resp = client.get(
        f"/api/simulations/{mine.id}/compare?other={theirs.id}", **_bearer(_token(client, ada))
    )
    assert resp.status_code == 404


def test_it_refuses_anonymous_callers_on_every_private_endpoint(client: Any) -> None:
    ops = _operations(client)
    assert ops >= PUBLIC_OPS
    client.get("/accounts/login/")  # a CSRF cookie, so that unsafe calls reach authentication
    csrf = {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}
    for method, path in sorted(ops - PUBLIC_OPS):
        url = re.sub(r"\{simulation_id\}", str(uuid.uuid4()), path)
        url = re.sub(r"\{\w+_id\}", "1", url)
        resp = client.generic(method, url, **csrf)
        assert resp.status_code == 401, f"{method} {path}: {resp.status_code}"
