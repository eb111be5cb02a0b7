"""The runs table's API against real PostgreSQL: column sorts (runs without a value last),
`<column>:<op>:<value>` filters, 422s naming the parameter, the columns endpoint, other users'
runs never shown, and the first page of 10,000 runs sorted by a metric."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from django.db import connection

pytestmark = pytest.mark.integration

METRIC = """INSERT INTO nnt_run_metric (simulation_id, metric, last, last_epoch, last_at,
    best_min, min_epoch, best_max, max_epoch) VALUES (%s, %s, %s, %s, now(), %s, %s, %s, %s)"""
HEALTH = "INSERT INTO nnt_run_health (simulation_id, tensor_epoch, flags, nonfinite_metric) VALUES (%s, %s, %s, %s)"


def _plan(optimizer: str, rate: float, fold: int | None = None) -> dict[str, Any]:
    """A run's config as the web stores it: its SimulationPlan."""
    return {
        "optimizer": {"optimizer": optimizer, "conf": {}},
        "loss": {"loss_function": "CategoricalCrossentropy", "conf": {}},
        "learning_rate": rate,
        "fold": fold,
        "tags": [],
    }


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    defaults = {
        "name": f"run {uuid.uuid4().hex[:6]}",
        "owner_name": owner.get_username(),
        "total_epochs": 10,
    }
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _metric(sim: Any, name: str, last: float, low: float, high: float, epoch: int = 10) -> None:
    with connection.cursor() as cur:
        cur.execute(METRIC, (sim.id, name, last, epoch, low, 3, high, 7))


def _health(sim: Any, flags: list[str], nonfinite: bool = False) -> None:
    with connection.cursor() as cur:
        cur.execute(HEALTH, (sim.id, 10, flags, nonfinite))


def _get(client: Any, user: Any, path: str, **params: Any) -> Any:
    client.force_login(user)
    query = urlencode(params, doseq=True)
    return client.get(f"/api/simulations{path}" + (f"?{query}" if query else ""))


def _ids(resp: Any) -> list[str]:
    assert resp.status_code == 200, resp.content
    return [row["id"] for row in resp.json()]


@pytest.fixture()
def grid(make_user: Any) -> dict[str, Any]:
    """Four runs of one user: Adam and SGD at two rates, with metrics and health."""
    from web.simulations.models import Experiment

    ada = make_user()
    exp = Experiment.objects.create(owner=ada, name="grid", config={"batch_size": 64})
    now = datetime.now(UTC)
    a = _sim(ada, experiment=exp, config=_plan("Adam", 0.01, 1), status="finished",
             started_at=now - timedelta(seconds=100), finished_at=now)  # fmt: skip
    b = _sim(ada, experiment=exp, config=_plan("SGD", 0.1, 2), status="running")
    c = _sim(ada, experiment=exp, config=_plan("Adam", 0.1, 2), status="failed")
    d = _sim(ada, experiment=exp, config=_plan("SGD", 0.01, 1))  # nothing recorded yet
    _metric(a, "val_accuracy", 0.85, 0.1, 0.9)
    _metric(b, "val_accuracy", 0.7, 0.2, 0.75)
    _metric(c, "val_accuracy", 0.5, 0.3, 0.95)
    _metric(a, "val_loss", 0.4, 0.2, 1.5)
    _metric(b, "val_loss", 0.3, 0.3, 1.2)
    _health(a, [])
    _health(b, ["dead_units", "vanishing_gradient"])
    _health(c, [])
    return {"user": ada, "a": a, "b": b, "c": c, "d": d, "experiment": exp}


def test_it_sorts_by_a_metrics_best_and_last_with_missing_values_last(
    client: Any, grid: dict[str, Any]
) -> None:
    ada, a, b, c, d = (grid[k] for k in ("user", "a", "b", "c", "d"))
    ids = [str(s.id) for s in (a, b, c, d)]
    by = {s: ids[i] for i, s in enumerate("abcd")}

    def sort(key: str) -> list[str]:
        return _ids(_get(client, ada, "", sort=key))

    # val_accuracy is better high: best is the highest value (c 0.95, a 0.9, b 0.75)
    assert sort("-metric.val_accuracy.best") == [by["c"], by["a"], by["b"], by["d"]]
    assert sort("metric.val_accuracy.best") == [by["b"], by["a"], by["c"], by["d"]]
    assert sort("-metric.val_accuracy.last") == [by["a"], by["b"], by["c"], by["d"]]
    # val_loss is better low: best is the lowest value (a 0.2, b 0.3); c and d have none
    assert sort("metric.val_loss.best")[:2] == [by["a"], by["b"]]
    assert sort("-metric.val_loss.best")[:2] == [by["b"], by["a"]]
    assert set(sort("-metric.val_loss.best")[2:]) == {by["c"], by["d"]}
    assert set(sort("-hp.learning_rate")[:2]) == {by["b"], by["c"]}  # 0.1 before 0.01
    assert sort("hp.optimizer")[:2] in ([by["a"], by["c"]], [by["c"], by["a"]])
    assert sort("-health")[:2] == [by["c"], by["b"]]  # failing, then warning; unknown last
    assert sort("health")[-1] == by["d"] and sort("-health")[-1] == by["d"]
    assert sort("-duration")[0] == by["a"]  # the only run that started
    assert sort("-created") == list(reversed(ids))  # the old sorts still work


def test_it_shows_each_runs_hparams_metrics_health_and_duration(
    client: Any, grid: dict[str, Any]
) -> None:
    ada, a = grid["user"], grid["a"]
    rows = {row["id"]: row for row in _get(client, ada, "").json()}
    row = rows[str(a.id)]
    assert row["hparams"] == {
        "optimizer": "Adam",
        "loss": "CategoricalCrossentropy",
        "learning_rate": 0.01,
        "fold": 1,
        "batch_size": 64,
        "epochs": 10,
    }
    assert row["metrics"]["val_accuracy"] == {
        "last": 0.85, "best": 0.9, "best_epoch": 7, "epoch": 10, "goal": "max"
    }  # fmt: skip
    assert row["metrics"]["val_loss"] == {
        "last": 0.4, "best": 0.2, "best_epoch": 3, "epoch": 10, "goal": "min"
    }  # fmt: skip
    assert row["health"] == {"verdict": "healthy", "flags": [], "diagnoses": []}
    assert row["duration_s"] == pytest.approx(100, abs=1)
    assert rows[str(grid["b"].id)]["health"] == {
        "verdict": "warning",
        "flags": ["dead_units", "vanishing_gradient"],
        "diagnoses": [],  # never diagnosed: the tensor flags decide
    }
    assert rows[str(grid["c"].id)]["health"]["verdict"] == "failing"  # the run failed
    assert rows[str(grid["d"].id)]["health"] == {"verdict": "unknown", "flags": [], "diagnoses": []}
    assert (
        rows[str(grid["d"].id)]["metrics"] == {} and rows[str(grid["d"].id)]["duration_s"] is None
    )
    detail = _get(client, ada, f"/{a.id}").json()
    assert detail["hparams"] == row["hparams"] and detail["metrics"] == row["metrics"]


def test_it_filters_by_any_column(client: Any, grid: dict[str, Any]) -> None:
    ada = grid["user"]
    by = {str(grid[k].id): k for k in "abcd"}

    def only(*filters: str) -> set[str]:
        resp = _get(client, ada, "", filter=list(filters))
        return {by[i] for i in _ids(resp)}

    assert only("hp.optimizer:eq:adam") == {"a", "c"}
    assert only("hp.optimizer:ne:Adam") == {"b", "d"}
    assert only("hp.optimizer:contains:gd") == {"b", "d"}
    assert only("metric.val_accuracy.best:ge:0.9") == {"a", "c"}
    assert only("metric.val_accuracy.best:ge:0.9", "hp.learning_rate:lt:0.05") == {"a"}
    assert only("metric.val_loss.last:le:0.3") == {"b"}
    assert only("hp.fold:eq:2") == {"b", "c"}
    assert only("hp.batch_size:eq:64") == {"a", "b", "c", "d"}
    assert only("health:eq:warning") == {"b"}
    assert only("health:ge:warning") == {"b", "c"}
    assert only("health:eq:unknown") == {"d"}
    assert only("health:contains:dead_units") == {"b"}
    assert only("status:eq:failed") == {"c"}
    assert only("duration:gt:50") == {"a"}
    assert only("created:ge:2000-01-01") == {"a", "b", "c", "d"}
    assert only("name:contains:" + grid["a"].name[-6:]) == {"a"}
    resp = _get(client, ada, "", filter="hp.optimizer:eq:Adam", sort="-metric.val_accuracy.best")
    assert [by[i] for i in _ids(resp)] == ["c", "a"] and resp["X-Total-Count"] == "2"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"sort": "bogus"}, "sort"),
        ({"sort": "-metric.val_loss.median"}, "sort"),
        ({"sort": "hp.colour"}, "sort"),
        ({"filter": "hp.optimizer"}, "filter"),
        ({"filter": "hp.optimizer:like:Adam"}, "filter"),
        ({"filter": "nothing:eq:1"}, "filter"),
        ({"filter": "metric.loss.last:gt:abc"}, "filter"),
        ({"filter": "metric.loss.last:gt:nan"}, "filter"),
        ({"filter": "metric.loss.last:contains:1"}, "filter"),
        ({"filter": "created:lt:yesterday"}, "filter"),
        ({"filter": "health:eq:poorly"}, "filter"),
        ({"filter": "name:eq:a\x00b"}, "filter"),
    ],
)
def test_it_refuses_bad_sorts_and_filters_naming_them(
    client: Any, make_user: Any, params: dict[str, str], field: str
) -> None:
    resp = _get(client, make_user(), "", **params)
    assert resp.status_code == 422, resp.content
    fix = resp.json()["errors"][field]
    assert "metric.<name>.best" in fix or "<column>:<op>:<value>" in fix


def test_it_lists_the_columns_the_matching_runs_have(
    client: Any, grid: dict[str, Any], make_user: Any
) -> None:
    ada = grid["user"]
    _metric(grid["a"], "learning_rate", 0.01, 0.01, 0.01)
    resp = _get(client, ada, "/columns", experiment=str(grid["experiment"].id))
    assert resp.status_code == 200, resp.content
    assert resp.json() == {
        "hparams": ["optimizer", "loss", "learning_rate", "fold", "batch_size"],
        "metrics": ["val_accuracy", "val_loss", "learning_rate"],
    }
    sdk = _sim(ada, config={"source": "sdk"}, tags=["mine"])
    _metric(sdk, "loss", 1.0, 1.0, 1.0)
    assert _get(client, ada, "/columns", tag="mine").json() == {"hparams": [], "metrics": ["loss"]}
    assert _get(client, make_user(), "/columns").json() == {"hparams": [], "metrics": []}


SORTS_AND_FILTERS = [
    {"sort": "-metric.val_accuracy.best"},
    {"sort": "health"},
    {"sort": "-hp.optimizer"},
    {"filter": "metric.val_accuracy.best:ge:0"},
    {"filter": "health:eq:unknown"},
    {"filter": "hp.optimizer:ne:nothing"},
    {"filter": "name:contains:run"},
]


def test_it_never_shows_another_users_runs_through_a_sort_or_filter(
    client: Any, grid: dict[str, Any], make_user: Any
) -> None:
    bob = make_user()
    own = _sim(bob, config=_plan("Adam", 0.5))
    theirs = {str(grid[k].id) for k in "abcd"}
    for params in SORTS_AND_FILTERS:
        resp = _get(client, bob, "", **params)
        assert not set(_ids(resp)) & theirs, params
        assert int(resp["X-Total-Count"]) <= 1
    assert _ids(_get(client, bob, "", sort="-metric.val_accuracy.best")) == [str(own.id)]
    assert _get(client, bob, f"/{grid['a'].id}").status_code == 404


RUNS = 10_000
MANY = """
INSERT INTO nnt_simulation (id, owner_id, owner_name, name, config, total_epochs)
SELECT gen_random_uuid(), %s, %s, 'bulk ' || i,
       jsonb_build_object('learning_rate', 0.001 * (i %% 7 + 1)), 60
FROM generate_series(1, %s) AS i
"""
# Every run but one in ten gets val_accuracy, a value spread over (0, 1) by a stride.
MANY_METRICS = """
INSERT INTO nnt_run_metric (simulation_id, metric, last, last_epoch, best_min, min_epoch,
                            best_max, max_epoch)
SELECT s.id, 'val_accuracy', v * 0.9, 60, v * 0.5, 1, v, 40
FROM (SELECT id, ((row_number() OVER (ORDER BY id)) * 7919 %% 10007) / 10007.0 AS v,
             row_number() OVER (ORDER BY id) AS n
      FROM nnt_simulation WHERE owner_id = %s) s
WHERE s.n %% 10 <> 0
"""


def test_it_sorts_ten_thousand_runs_by_a_metric_and_serves_the_right_first_page(
    client: Any, make_user: Any
) -> None:
    ada = make_user()
    try:
        _many_runs(client, ada)
    finally:  # later tests of the session share the database
        with connection.cursor() as cur:
            cur.execute(
                "DELETE FROM nnt_run_metric WHERE simulation_id IN "
                "(SELECT id FROM nnt_simulation WHERE owner_id = %s)",
                (ada.id,),
            )
            cur.execute("DELETE FROM nnt_simulation WHERE owner_id = %s", (ada.id,))


def _many_runs(client: Any, ada: Any) -> None:
    with connection.cursor() as cur:
        cur.execute(MANY, (ada.id, ada.get_username(), RUNS))
        cur.execute(MANY_METRICS, (ada.id,))
        cur.execute(
            "SELECT s.id, m.best_max FROM nnt_simulation s LEFT JOIN nnt_run_metric m "
            "ON m.simulation_id = s.id AND m.metric = 'val_accuracy' WHERE s.owner_id = %s",
            (ada.id,),
        )
        values = {str(sid): best for sid, best in cur.fetchall()}
    ranked = sorted((v, sid) for sid, v in values.items() if v is not None)
    top = [sid for _, sid in reversed(ranked)][:50]
    resp = _get(client, ada, "", sort="-metric.val_accuracy.best", limit=50)
    assert _ids(resp) == top and resp["X-Total-Count"] == str(RUNS)
    assert [r["metrics"]["val_accuracy"]["best"] for r in resp.json()] == [
        values[sid] for sid in top
    ]
    low = _ids(_get(client, ada, "", sort="metric.val_accuracy.best", limit=20))
    assert low == [sid for _, sid in ranked][:20]
    last_page = _ids(_get(client, ada, "", sort="metric.val_accuracy.best", offset=RUNS - 100))
    assert {values[sid] for sid in last_page} == {None}  # the runs without it, at the end
    filtered = _get(client, ada, "", filter="metric.val_accuracy.best:ge:0.999", limit=1000)
    assert sorted(_ids(filtered)) == sorted(s for v, s in ranked if v >= 0.999)
