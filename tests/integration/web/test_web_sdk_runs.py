"""`POST /api/sdk-runs`: a run for a user's own script, owned by the caller, with its event key."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from schemas import auth
from tests.accounts import TEST_SECRET


def _bearer(client: Any, user: Any) -> dict[str, str]:
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": "pw-long-enough-1"},
        content_type="application/json",
    )
    assert resp.status_code == 201, resp.content
    return {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['token']}"}


def _create(client: Any, headers: dict[str, str], body: dict[str, Any]) -> Any:
    return client.post("/api/sdk-runs", body, content_type="application/json", **headers)


def test_it_creates_a_run_owned_by_the_caller_and_answers_its_run_key(
    client: Any, make_user: Any
) -> None:
    from web.simulations.models import Simulation

    user = make_user()
    headers = _bearer(client, user)
    resp = _create(
        client, headers, {"name": " my  run ", "tags": ["cnn", "cnn", "base"], "total_epochs": 20}
    )
    assert resp.status_code == 201, resp.content
    doc = resp.json()
    sid = uuid.UUID(doc["simulation_id"])
    # The key the stream workers check events against (same secret, schemas/auth.py).
    assert doc["run_key"] == auth.run_key(TEST_SECRET, sid)
    assert (doc["name"], doc["owner"], doc["tags"], doc["total_epochs"]) == (
        "my run", user.get_username(), ["cnn", "base"], 20
    )  # fmt: skip
    sim = Simulation.objects.get(pk=sid)
    assert (sim.owner_id, sim.owner_name, sim.name, sim.tags, sim.total_epochs) == (
        user.pk, user.get_username(), "my run", ["cnn", "base"], 20
    )  # fmt: skip
    listed = client.get("/api/simulations", **headers).json()
    assert str(sid) in {s["id"] for s in listed}
    other = make_user()
    assert client.get(f"/api/simulations/{sid}", **_bearer(client, other)).status_code == 404


def test_each_run_gets_its_own_key(client: Any, make_user: Any) -> None:
    headers = _bearer(client, make_user())
    keys = {_create(client, headers, {"name": "again"}).json()["run_key"] for _ in range(2)}
    assert len(keys) == 2


def test_it_refuses_a_bad_name_or_tags_naming_the_field_and_creates_nothing(
    client: Any, make_user: Any
) -> None:
    from web.simulations.models import Simulation

    user = make_user()
    headers = _bearer(client, user)
    for body, field in (
        ({"name": ""}, "name"),
        ({"name": "a\x00b"}, "name"),
        ({"name": "x" * 301}, "name"),
        ({"name": "ok", "tags": ["t\x00"]}, "tag"),
        ({"name": "ok", "tags": [f"t{i}" for i in range(21)]}, "tags"),
    ):
        resp = _create(client, headers, body)
        assert resp.status_code == 422, (body, resp.content)
        assert field in resp.json()["errors"], resp.json()
    assert _create(client, headers, {"name": "ok", "total_epochs": -1}).status_code == 422
    assert not Simulation.objects.filter(owner=user).exists()


def test_it_refuses_sdk_runs_past_max_concurrent_runs_with_429_naming_it(
    client: Any, make_user: Any
) -> None:
    from django.conf import settings

    from web.accounts import quotas
    from web.simulations.models import Simulation

    user = make_user()
    quotas.set_limits(user, 2, None)
    headers = _bearer(client, user)
    first, _ = (_create(client, headers, {"name": f"run {i}"}) for i in range(2))
    assert first.status_code == 201
    refused = _create(client, headers, {"name": "one too many"})
    assert refused.status_code == 429, refused.content
    message = refused.json()["detail"]
    assert "2 SDK run(s) not ended, the limit of 2 concurrent runs (max_concurrent_runs)" in message
    assert "delete those whose script is gone" in message
    assert Simulation.objects.filter(owner=user).count() == 2
    Simulation.objects.filter(pk=first.json()["simulation_id"]).update(status="finished")
    assert _create(client, headers, {"name": "next"}).status_code == 201
    # Without an admin's limit: the default from settings.
    other = make_user()
    headers = _bearer(client, other)
    for i in range(settings.NNT_QUOTA_MAX_CONCURRENT_RUNS):
        assert _create(client, headers, {"name": f"run {i}"}).status_code == 201
    over = _create(client, headers, {"name": "over"})
    assert over.status_code == 429 and "max_concurrent_runs" in over.json()["detail"]


def test_a_script_with_its_run_key_fills_its_owners_charts_end_to_end(
    live_web: Any, make_user: Any, kafka_bootstrap: str, web_db_url: str, tmp_path: Path
) -> None:
    """register_run over HTTP -> TrackerCallback signing -> Kafka -> a real worker -> the
    owner's REST answers; nobody else sees the run."""
    import requests

    from tests.streamworker import Worker, until
    from tests.unit.trainer.tiny import tiny_data, tiny_model
    from trainer.sdk import CollectSpec, register_run

    user, other = make_user(), make_user()
    tokens = {}
    for who in (user, other):
        resp = requests.post(f"{live_web.url}/api/tokens", timeout=30,
                             json={"username": who.get_username(), "password": "pw-long-enough-1"})  # fmt: skip
        tokens[who] = resp.json()["token"]
    worker = Worker(kafka_bootstrap, web_db_url, tmp_path / "worker")
    try:
        worker.wait_ready()
        run = register_run(live_web.url, tokens[user], "my script", tags=["sdk"], total_epochs=2)
        tracker = run.tracker(
            kafka_bootstrap, collect=CollectSpec(gradients=False, activations=False)
        )
        model, (x, y) = tiny_model(), tiny_data()
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[tracker])

        def seen(token: str, path: str = "") -> Any:
            url = f"{live_web.url}/api/simulations/{run.simulation_id}{path}"
            return requests.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=30)

        def finished() -> dict | None:
            doc = seen(tokens[user]).json()
            return doc if doc["status"] == "finished" else None

        def both_epochs() -> dict | None:
            # Statuses and epochs are separate topics, stored by separate agents: `finished`
            # may be stored before the last epoch's metrics are.
            loss = seen(tokens[user], "/metrics").json().get("loss")
            return loss if loss and loss["epochs"] == [1, 2] else None

        doc = until(finished, 120, worker)
        metrics = until(both_epochs, 60, worker)
    finally:
        worker.stop()
    assert (doc["owner"], doc["name"], doc["tags"], doc["epoch"]) == (
        user.get_username(), "my script", ["sdk"], 2
    )  # fmt: skip
    assert metrics["epochs"] == [1, 2]
    assert seen(tokens[other]).status_code == 404
