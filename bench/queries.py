"""Server time of the web's heaviest reads, against a raw SELECT of the same rows.

Through the real Django stack (URL routing, token auth, ownership check, django-ninja
serialisation) on a real PostgreSQL, in-process with Django's test client (no network):
- `layer_history_query_s`: one layer's whole history for its heatmap view, a 500x500 kernel
  (250,000 values) recorded at 20 epochs: 5M values. Peer: a raw SELECT of that layer's rows.
- `layer_values_query_s`: the same layer's 3-D scatter (sampled values at every epoch, which
  decodes all 5M values). Peer: the same raw SELECT.
- `chart_query_s`: a 100,000-epoch metric series downsampled (LTTB) to <= 2,000 points.
  Peer: a raw SELECT of the 100,000 rows.
Each figure is the median of REPEATS warm requests. `python -m bench.queries` prints JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import psycopg

from bench import timing
from bench.ingest import database
from schemas.tensors import TensorHeader, unpack
from store.sink import Sink
from stream_processors import rows
from trainer import stats
from trainer.reporting import tensor_messages

REPEATS = 7
KERNEL = (500, 500)
EPOCHS = 20
SERIES_POINTS = 100_000
MAX_POINTS = 2000


def django_up(url: str, home: str) -> None:
    """Configure Django on the bench database, as the product does, and migrate."""
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "web.settings", "DATABASE_URL": url, "NNT_HOME": home,
        "NNT_ALLOWED_HOSTS": "testserver", "NNT_LIVE_BRIDGE": "false",
    })  # fmt: skip
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def owner_and_simulation() -> tuple[str, uuid.UUID]:
    """A user with an API token and one simulation of theirs; returns (token, id)."""
    from django.contrib.auth import get_user_model

    from web.accounts.models import ApiToken
    from web.simulations.models import Simulation

    user = get_user_model().objects.create_user(f"bench{uuid.uuid4().hex[:6]}", password="x" * 12)
    _, token = ApiToken.issue(user, "bench")
    sim = Simulation.objects.create(
        owner=user,
        owner_name=user.username,
        name="bench",
        status="finished",
        epoch=EPOCHS,
        total_epochs=EPOCHS,
    )
    return token, sim.id


def store_layer(url: str, sid: uuid.UUID) -> int:
    """A 500x500 kernel at EPOCHS epochs, as the trainer sends it and the worker stores it."""
    rng = np.random.default_rng(0)
    value = rng.normal(0, 0.05, KERNEL).astype(np.float32)
    t0, chunks = datetime.now(UTC), []
    for epoch in range(1, EPOCHS + 1):
        value += rng.normal(0, 1e-3, KERNEL).astype(np.float32)
        header = TensorHeader(
            simulation_id=sid, epoch=epoch, layer_index=0, layer_name="dense", kind="kernel",
            variable="dense/kernel", dtype="float32", stats=stats.tensor_stats(value),
            at=t0 + timedelta(seconds=epoch),
        )  # fmt: skip
        chunks += [unpack(m) for m in tensor_messages(header, value)]

    async def write() -> None:
        sink = Sink(url)
        await sink.run(lambda conn: sink.copy(
            conn, rows.TENSOR, [rows.tensor_row(h, p) for h, p in chunks]))  # fmt: skip
        await sink.close()

    asyncio.run(write())
    return EPOCHS * value.size


def store_series(url: str, sid: uuid.UUID) -> None:
    """A 100,000-epoch `loss` series in nnt_epoch_metric."""
    t0 = datetime.now(UTC)
    loss = np.exp(-np.arange(SERIES_POINTS) / 20_000) + np.random.default_rng(1).normal(
        0, 0.01, SERIES_POINTS)  # fmt: skip
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        with cur.copy(
            "COPY nnt_epoch_metric (simulation_id, epoch, metric, value, at) FROM STDIN"
        ) as cp:
            for e in range(SERIES_POINTS):
                cp.write_row((sid, e + 1, "loss", float(loss[e]), t0 + timedelta(seconds=e)))
        conn.commit()
        conn.execute("ANALYZE nnt_epoch_metric")


def median_s(call: Callable[[], Any]) -> float:
    """Median wall time of REPEATS calls after one warm-up call."""
    return timing.median_s(call, REPEATS)


def raw_select(url: str, sql: str, params: tuple[Any, ...]) -> Callable[[], Any]:
    """The peer: fetch the same rows with plain psycopg, nothing else."""
    conn = psycopg.connect(url, autocommit=True)
    return lambda: conn.execute(sql, params).fetchall()


def measure(url: str) -> dict[str, Any]:
    """All three figures and their peers."""
    from django.test import Client

    token, sid = owner_and_simulation()
    values = store_layer(url, sid)
    store_series(url, sid)
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def get(path: str) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(path)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
            return json.loads(response.content)

        return call

    api = f"/api/simulations/{sid}"
    series = get(f"{api}/metrics?max_points={MAX_POINTS}")()
    assert 0 < len(series["loss"]["epochs"]) <= MAX_POINTS, "the chart series was not downsampled"
    layer_raw = raw_select(
        url,
        "SELECT data, stats FROM nnt_tensor WHERE simulation_id = %s "
        "AND layer_index = 0 AND kind = 'kernel'",
        (sid,),
    )
    chart_raw = raw_select(
        url,
        "SELECT epoch, value FROM nnt_epoch_metric WHERE simulation_id = %s AND metric = 'loss'",
        (sid,),
    )
    out: dict[str, Any] = {
        "bench": "queries",
        "layer_values": values,
        "series_points": SERIES_POINTS,
        "max_points": MAX_POINTS,
        "repeats": REPEATS,
    }
    out["layer_history_query_s"] = median_s(get(f"{api}/tensors?kind=kernel"))
    out["layer_values_query_s"] = median_s(
        get(f"{api}/tensors/values?key=0:kernel:dense/kernel&max_epochs={EPOCHS}")
    )
    out["layer_raw_select_s"] = median_s(layer_raw)
    out["chart_query_s"] = median_s(get(f"{api}/metrics?max_points={MAX_POINTS}"))
    out["chart_raw_select_s"] = median_s(chart_raw)
    out["chart_points_returned"] = len(series["loss"]["epochs"])
    out["layer_history_vs_raw_select_ratio"] = (
        out["layer_history_query_s"] / out["layer_raw_select_s"]
    )
    out["chart_vs_raw_select_ratio"] = out["chart_query_s"] / out["chart_raw_select_s"]
    return out


def run() -> dict[str, Any]:
    """A fresh database (or NNT_TEST_DATABASE_URL), Django migrated on it, then measure."""
    with database() as url, tempfile.TemporaryDirectory(prefix="nnt-bench-web-") as home:
        django_up(url, home)
        return measure(url)


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
