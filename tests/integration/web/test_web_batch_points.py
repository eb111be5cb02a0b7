"""Batch-level points over REST, each marked raw or reduced, against real PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db import connection

T0 = datetime(2025, 3, 1, tzinfo=UTC)
INSERT = (
    "INSERT INTO nnt_batch_metric (simulation_id, epoch, step, metric, value, value_min, "
    "value_max, reduced, at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
)


def _sim(owner: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(owner=owner, owner_name=owner.get_username(), name="b")


def _client() -> Any:
    """The router on an API of its own with the project's error handlers (404s), so the test
    holds whether or not web/api.py mounts it yet."""
    from ninja import NinjaAPI
    from ninja.testing import TestClient

    from web import errors
    from web.simulations.batch_api import router

    api = NinjaAPI(urls_namespace=f"batch-test-{uuid.uuid4().hex[:8]}")
    api.add_router("/", router)
    errors.install(api)
    return TestClient(api)


def test_it_marks_each_batch_point_raw_or_reduced(make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    with connection.cursor() as cur:
        cur.executemany(
            INSERT,
            [
                # epoch 1 was reduced: one bucket of steps 0..9, last value 0.4 at step 9
                (sim.id, 1, 9, "loss", 0.4, 0.1, 0.9, True, T0),
                # epoch 2 is raw
                (sim.id, 2, 0, "loss", 0.3, None, None, False, T0 + timedelta(hours=1)),
                (sim.id, 2, 1, "loss", 0.2, None, None, False, T0 + timedelta(hours=1)),
                (sim.id, 2, 0, "accuracy", 0.7, None, None, False, T0 + timedelta(hours=1)),
            ],
        )
    response = _client().get(f"/simulations/{sim.id}/batches", user=ada)
    assert response.status_code == 200
    body = response.json()
    assert body["truncated"] is False
    series = {s["metric"]: s["points"] for s in body["metrics"]}
    assert series["loss"] == [
        {"epoch": 1, "step": 9, "value": 0.4, "min": 0.1, "max": 0.9, "reduced": True},
        {"epoch": 2, "step": 0, "value": 0.3, "min": 0.3, "max": 0.3, "reduced": False},
        {"epoch": 2, "step": 1, "value": 0.2, "min": 0.2, "max": 0.2, "reduced": False},
    ]
    assert series["accuracy"] == [
        {"epoch": 2, "step": 0, "value": 0.7, "min": 0.7, "max": 0.7, "reduced": False}
    ]

    only = (
        _client()
        .get(f"/simulations/{sim.id}/batches?metric=loss&epoch_from=2&limit=1", user=ada)
        .json()
    )
    assert only["truncated"] is True
    assert [(s["metric"], [p["step"] for p in s["points"]]) for s in only["metrics"]] == [
        ("loss", [0])
    ]


def test_it_hides_another_users_batch_points(make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    sim = _sim(ada)
    assert _client().get(f"/simulations/{sim.id}/batches", user=bob).status_code == 404
    assert _client().get(f"/simulations/{uuid.uuid4()}/batches", user=ada).status_code == 404
