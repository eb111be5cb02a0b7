"""What the API says is wrong with a run, against real PostgreSQL: the health verdict and active
diagnoses in the runs list, every diagnosis in the detail, the evidence by epoch, a user's
alerts; nothing of another user's runs. Rows are written by the stream workers' merge."""

from __future__ import annotations

from typing import Any

import pytest

from store import diagnoses
from tests.timeseries_data import diagnosed_epoch, write_diagnosed


def _sim(owner: Any, name: str = "run", **fields: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name=name, status="running",
        epoch=3, total_epochs=12, **fields,
    )  # fmt: skip


def _flags(sim: Any, flags: list[str]) -> None:
    """Tensor health flags at the run's latest epoch, as the workers summarise them."""
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(
            "INSERT INTO nnt_run_health (simulation_id, tensor_epoch, flags) VALUES (%s, 3, %s) "
            "ON CONFLICT (simulation_id) DO UPDATE SET flags = EXCLUDED.flags",
            [sim.id, flags],
        )


@pytest.fixture()
def runs(client: Any, make_user: Any, web_db_url: str) -> dict[str, Any]:
    """ada's runs: one that vanished then diverged, one diagnosed healthy despite tensor flags,
    one never diagnosed with flags; bob's run with a problem."""
    ada, bob = make_user(), make_user()
    broken, fine, old = _sim(ada, "broken"), _sim(ada, "fine"), _sim(ada, "old")
    theirs = _sim(bob, "bobs run")
    write_diagnosed(
        web_db_url,
        [diagnosed_epoch(broken.id, 1, ["vanishing_gradients"])],
        # two epochs in one batch, the later first
        [
            diagnosed_epoch(broken.id, 3, ["divergence"]),
            diagnosed_epoch(broken.id, 2, ["vanishing_gradients", "divergence"]),
        ],
        [diagnosed_epoch(fine.id, 1, ["dead_units"]), diagnosed_epoch(fine.id, 2, [])],
        [diagnosed_epoch(old.id, 1, None), diagnosed_epoch(theirs.id, 1, ["saturation"])],
    )
    _flags(fine, ["dead_units"])
    _flags(old, ["vanishing_gradient"])
    client.force_login(ada)
    return {"ada": ada, "bob": bob, "broken": broken, "fine": fine, "old": old, "theirs": theirs}


def _health(client: Any, **query: str) -> dict[str, dict[str, Any]]:
    resp = client.get("/api/simulations", query)
    assert resp.status_code == 200, resp.content
    return {item["name"]: item["health"] for item in resp.json()}


def test_it_shows_the_verdict_and_active_diagnoses_of_each_run(client: Any, runs: Any) -> None:
    health = _health(client)
    assert set(health) == {"broken", "fine", "old"}
    assert health["broken"]["verdict"] == "failing"
    assert health["broken"]["diagnoses"] == [
        {"problem": "divergence", "severity": "fatal", "title": "Diverging loss",
         "summary": "Diverging loss since epoch 1", "first_epoch": 1,
         "layers": ["dense", "dense_1"]},
    ]  # fmt: skip
    # Diagnosed healthy at its latest epoch: the tensor flags no longer decide.
    assert health["fine"] == {"verdict": "healthy", "flags": ["dead_units"], "diagnoses": []}
    # Never diagnosed (an older SDK): the flags decide, as before.
    assert health["old"] == {"verdict": "warning", "flags": ["vanishing_gradient"], "diagnoses": []}
    assert set(_health(client, filter="health:eq:failing")) == {"broken"}
    assert set(_health(client, filter="health:le:warning")) == {"fine", "old"}
    order = list(_health(client, sort="-health"))
    assert order == ["broken", "old", "fine"]


def test_it_lists_every_diagnosis_in_the_detail_fatal_first(client: Any, runs: Any) -> None:
    resp = client.get(f"/api/simulations/{runs['broken'].id}")
    assert resp.status_code == 200, resp.content
    found = resp.json()["diagnoses"]
    assert [(d["problem"], d["active"], d["first_epoch"], d["last_epoch"]) for d in found] == [
        ("divergence", True, 1, 3),
        ("vanishing_gradients", False, 1, 2),
    ]
    assert found[0]["fix"] == "what to do about divergence"
    assert found[0]["evidence"] == {"ratio": pytest.approx(3e-6)}
    assert found[1]["severity"] == "warning" and found[1]["title"] == "Vanishing gradients"


def test_it_answers_the_diagnoses_and_evidence_of_a_run(
    client: Any, runs: Any, web_db_url: str
) -> None:
    sim = runs["broken"]
    resp = client.get(f"/api/simulations/{sim.id}/diagnoses")
    assert resp.status_code == 200, resp.content
    body = resp.json()
    assert [d["problem"] for d in body["diagnoses"]] == ["divergence", "vanishing_gradients"]
    assert [e["epoch"] for e in body["evidence"]] == [1, 2, 3]
    layer = body["evidence"][1]["layers"][1]
    assert layer == {"layer_index": 1, "layer_name": "dense_1", "activation": "relu",
                     "grad_norm": 3.0}  # fmt: skip
    assert body["evidence"][2]["trend"]["loss"] == pytest.approx(2 / 3)
    # A long run: the last epochs only.
    many = diagnoses.MAX_EVIDENCE_EPOCHS + 5
    write_diagnosed(web_db_url, [diagnosed_epoch(sim.id, e, []) for e in range(4, many + 1)])
    evidence = client.get(f"/api/simulations/{sim.id}/diagnoses").json()["evidence"]
    assert [e["epoch"] for e in evidence] == list(range(6, many + 1))


def test_a_user_gets_the_alerts_of_their_own_runs_since_a_time(
    client: Any, runs: Any, make_user: Any
) -> None:
    alerts = client.get("/api/alerts").json()
    assert {(a["name"], a["problem"]) for a in alerts} == {
        ("broken", "vanishing_gradients"), ("broken", "divergence"), ("fine", "dead_units"),
    }  # fmt: skip
    assert [a["at"] for a in alerts] == sorted((a["at"] for a in alerts), reverse=True)
    first = next(a for a in alerts if a["problem"] == "divergence")
    assert first == first | {"simulation_id": str(runs["broken"].id), "severity": "fatal",
                             "title": "Diverging loss", "first_epoch": 1,
                             "fix": "what to do about divergence"}  # fmt: skip
    newest = alerts[0]["at"]
    assert client.get("/api/alerts", {"since": newest}).json() == []
    assert len(client.get("/api/alerts", {"limit": 2}).json()) == 2
    bad = client.get("/api/alerts", {"since": "yesterday"})
    assert bad.status_code == 422 and "since" in bad.json()["errors"]
    # Alerts are personal: staff see every run, but only their own alerts.
    client.force_login(make_user(staff=True))
    assert client.get("/api/alerts").json() == []
    assert client.get(f"/api/simulations/{runs['broken'].id}/diagnoses").status_code == 200


def test_another_user_sees_nothing_of_a_runs_diagnoses(client: Any, runs: Any) -> None:
    client.force_login(runs["bob"])
    for sim in ("broken", "fine"):
        resp = client.get(f"/api/simulations/{runs[sim].id}/diagnoses")
        assert resp.status_code == 404
    alerts = client.get("/api/alerts").json()
    assert [(a["name"], a["problem"]) for a in alerts] == [("bobs run", "saturation")]
