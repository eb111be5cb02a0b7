"""A run's resources and timeline over the API: samples stored in nnt_resource come back
oldest first, merged down to `max_points` (mean %, peak memory), with GPU only when sampled;
another user's run is a 404, and a bad `max_points` a 422 naming it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

T0 = datetime(2025, 4, 1, 12, 0, tzinfo=UTC)
GIB = 1024**3


def _sim(owner: Any, **extra: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name="resources run", status="running",
        started_at=T0, **extra,
    )  # fmt: skip


def _samples(sim: Any, n: int, gpu: bool) -> None:
    rows = [
        (sim.id, T0 + timedelta(seconds=5 * i), float(i % 10) * 10, GIB + i * 1000, 4 * GIB,
         50.0 if gpu else None, 2 * GIB if gpu else None)
        for i in range(n)
    ]  # fmt: skip
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_resource VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


def test_it_returns_every_sample_of_the_run_in_time_order(client: Any, make_user: Any) -> None:
    owner = make_user()
    sim = _sim(owner)
    _samples(sim, 12, gpu=False)
    client.force_login(owner)
    body = client.get(f"/api/simulations/{sim.id}/resources").json()
    assert body["samples"] == 12 and body["has_gpu"] is False
    assert body["seconds"] == [5.0 * i for i in range(12)]
    assert body["t0"].startswith("2025-04-01T12:00:00")
    assert body["cpu_percent"][:3] == [0.0, 10.0, 20.0]
    assert body["memory_bytes"][-1] == GIB + 11_000 and body["memory_limit_bytes"][0] == 4 * GIB
    assert body["gpu_percent"] == [None] * 12


def test_it_merges_samples_down_to_max_points(client: Any, make_user: Any) -> None:
    owner = make_user()
    sim = _sim(owner)
    _samples(sim, 1000, gpu=True)
    client.force_login(owner)
    body = client.get(f"/api/simulations/{sim.id}/resources?max_points=100").json()
    assert body["samples"] == 1000 and body["has_gpu"] is True
    assert len(body["seconds"]) == len(body["cpu_percent"]) == 100
    assert body["seconds"] == sorted(body["seconds"])
    # each point is ten samples: CPU 0..90 % -> their mean; memory -> the peak of the ten
    assert body["cpu_percent"] == [45.0] * 100
    assert body["memory_bytes"][0] == GIB + 9 * 1000
    assert body["gpu_percent"][0] == 50.0 and body["gpu_memory_bytes"][0] == 2 * GIB
    raw = client.get(f"/api/simulations/{sim.id}/resources?max_points=0").json()
    assert len(raw["seconds"]) == 1000


def test_it_hides_another_users_run_and_names_a_bad_max_points(client: Any, make_user: Any) -> None:
    owner, other, staff = make_user(), make_user(), make_user(staff=True)
    sim = _sim(owner)
    _samples(sim, 3, gpu=False)
    client.force_login(other)
    for what in ("resources", "timeline"):
        assert client.get(f"/api/simulations/{sim.id}/{what}").status_code == 404
    client.force_login(staff)
    assert client.get(f"/api/simulations/{sim.id}/resources").json()["samples"] == 3
    client.force_login(owner)
    bad = client.get(f"/api/simulations/{sim.id}/resources?max_points=-1")
    assert bad.status_code == 422 and "max_points" in bad.json()["errors"]


def test_it_answers_an_empty_run_with_no_samples(client: Any, make_user: Any) -> None:
    owner = make_user()
    sim = _sim(owner)
    client.force_login(owner)
    body = client.get(f"/api/simulations/{sim.id}/resources").json()
    assert body["samples"] == 0 and body["seconds"] == [] and body["has_gpu"] is False


def test_it_tells_when_each_epoch_landed_and_the_steps_per_epoch(
    client: Any, make_user: Any
) -> None:
    owner = make_user()
    sim = _sim(owner, config={"batch_size": 32})
    rows = [
        (sim.id, e, name, value, T0 + timedelta(seconds=20 * e))
        for e in (1, 2, 3)
        for name, value in (("loss", 1.0 / e), ("epoch_time_s", 20.0), ("samples_per_s", 50.0))
    ]  # 50 samples/s x 20 s = 1000 samples: 32 batches of 32 (the last one short)
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", rows)
    client.force_login(owner)
    body = client.get(f"/api/simulations/{sim.id}/timeline").json()
    assert body["epochs"] == [1, 2, 3] and body["seconds"] == [20.0, 40.0, 60.0]
    assert body["steps_per_epoch"] == 32
    unknown = _sim(owner)
    assert client.get(f"/api/simulations/{unknown.id}/timeline").json()["steps_per_epoch"] is None
