"""The web's charts and export on TimescaleDB: after compress_chunk on every chunk, every
endpoint a chart or the export reads answers exactly as before; the answers are the same on
native partitions; once old tensor values are dropped, the statistics charts stay whole; and
batch points folded by the continuous aggregate read as the native pass's reduced ones.

Each form gets its own migrated database on the session's server (the shared web database
of conftest.py holds plain tables), and the web's connection is pointed at it for the test.
"""

from __future__ import annotations

import asyncio
import io
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest

from stream_processors import downsample, rows
from tests.timeseries_data import EPOCHS, compress_everything, new_database, run_rows, write

MODEL = {
    "class_name": "Sequential",
    "config": {
        "name": "mlp",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8], "name": "digits"}},
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {"class_name": "Dense", "config": {"name": "hidden", "units": 16}},
            {"class_name": "Dense", "config": {"name": "logits", "units": 10}},
        ],
    },
}
# The same runs in every database: equal ids, names and tag, so the answers can be compared.
RUNS = (uuid.uuid4(), uuid.uuid4())
TAG = f"ts{uuid.uuid4().hex[:6]}"


@contextmanager
def web_on(url: str) -> Iterator[None]:
    """The web's database connection on another database of the same server, for a while."""
    from django.contrib.contenttypes.models import ContentType
    from django.db import connections

    conn = connections["default"]
    old = conn.settings_dict["NAME"]
    conn.close()
    conn.settings_dict["NAME"] = urlsplit(url).path.lstrip("/")
    ContentType.objects.clear_cache()  # ids differ per database
    try:
        yield
    finally:
        conn.close()
        conn.settings_dict["NAME"] = old
        ContentType.objects.clear_cache()


@dataclass
class WebDatabase:
    """A migrated web database holding the two runs, and the user who owns them."""

    url: str
    user: Any


@pytest.fixture()
def web_database(django_ready: Path, pg_url: str, timescaledb: str) -> Any:
    """Factory: a new web database in one form (True: TimescaleDB, False: native)."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    def make(timescale: bool) -> WebDatabase:
        url = new_database(pg_url, "nnt_web_ts" if timescale else "nnt_web_native", timescale)
        with web_on(url):
            call_command("migrate", verbosity=0)
            user = get_user_model().objects.create_user("ada", password="pw-long-enough-1")
            _runs(user)
        for sim in RUNS:
            write(url, run_rows(sim))
        return WebDatabase(url, user)

    return make


def _runs(owner: Any) -> None:
    from web.simulations.models import Experiment, Simulation

    config = {"name": "exp", "total_epochs": EPOCHS, "epoch_period": 1}
    config["extra_metrics"] = [{"metric": "AUC"}]
    exp = Experiment.objects.create(owner=owner, name="exp", model_json=MODEL, config=config)
    for i, sim in enumerate(RUNS):
        Simulation.objects.create(
            id=sim,
            owner=owner,
            owner_name=owner.get_username(),
            experiment=exp,
            name=f"run {i}",
            status="finished",
            message="test: accuracy=0.9000, loss=0.3000",
            epoch=EPOCHS,
            total_epochs=EPOCHS,
            tags=[TAG],
        )


def _export(client: Any, sim: uuid.UUID) -> dict[str, bytes]:
    resp = client.get(f"/api/simulations/{sim}/export?content=full")  # every value too
    assert resp.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(b"".join(resp.streaming_content)))
    return {name: zf.read(name) for name in zf.namelist()}


def answers(client: Any) -> dict[str, Any]:
    """What every chart and the export show for the first run (the other is its baseline)."""
    from web.simulations import metrics

    sim, other = RUNS
    base = f"/api/simulations/{sim}"
    urls = [
        f"{base}/metrics",
        f"{base}/metrics?max_points=5",
        f"{base}/summary",
        f"{base}/tensors",
        f"{base}/tensors?kind=gradient",
        f"{base}/compare?other={other}",
        f"{base}/batches",
        f"{base}/batches?metric=loss&epoch_from=3&epoch_to=4&limit=25",
        f"/api/tags/aggregates?tag={TAG}",
    ]
    for key in (
        "2:kernel:mlp/hidden/kernel",
        "2:bias:mlp/hidden/bias",
        "2:gradient:mlp/hidden/kernel",
    ):
        urls.append(f"{base}/tensors/values?key={key}&max_values=50")
    out: dict[str, Any] = {}
    for url in urls:
        resp = client.get(url)
        assert resp.status_code == 200, (url, resp.status_code)
        out[url] = resp.json()
    out["live points since epoch 4"] = metrics.points_since(sim, 4)
    export = _export(client, sim)
    out |= {f"export {name}": data for name, data in export.items() if name != "config.json"}
    return out


def test_it_answers_every_chart_and_export_alike_on_columnstore_and_native(
    web_database: Any, client: Any
) -> None:
    timescale, native = web_database(True), web_database(False)
    seen = {}
    for form, db in (("timescaledb", timescale), ("native", native)):
        with web_on(db.url):
            client.force_login(db.user)
            seen[form] = answers(client)
    ts = seen["timescaledb"]
    assert len(ts[f"/api/simulations/{RUNS[0]}/tensors"]) == 4  # kernel, bias, gradient, activation
    assert {
        "export kernels.npz",
        "export tensor_stats.csv",
        "export histograms.npz",
        "export epochs.csv",
    } <= set(ts)
    assert ts == seen["native"]

    tensor_chunks = compress_everything(timescale.url)[1]
    assert tensor_chunks >= 3  # three days of one-day chunks

    with web_on(timescale.url):
        client.force_login(timescale.user)
        compressed = answers(client)
    assert compressed.keys() == ts.keys()
    for key in ts:
        assert compressed[key] == ts[key], key


def test_it_keeps_every_statistics_chart_once_old_tensor_values_are_dropped(
    web_database: Any, client: Any
) -> None:
    db = web_database(True)
    compress_everything(db.url)
    tensors = f"/api/simulations/{RUNS[0]}/tensors"
    values = f"/api/simulations/{RUNS[0]}/tensors/values?key=2:kernel:mlp/hidden/kernel"
    with web_on(db.url):
        client.force_login(db.user)
        before = client.get(tensors).json()
        assert client.get(values).json()["epochs"] == list(range(1, EPOCHS + 1))
        with psycopg.connect(db.url, autocommit=True) as conn:
            row = conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs "
                "WHERE proc_name = 'nnt_drop_tensor_payloads'"
            ).fetchone()
            assert row is not None
            conn.execute("CALL run_job(%s)", (row[0],))
        assert client.get(tensors).json() == before
        assert client.get(values).status_code == 404  # no values left to sample


def _fold_natively(url: str) -> dict[str, int]:
    """The stream workers' pass on native tables: batch points older than an hour folded."""

    async def go() -> dict[str, int]:
        policy = downsample.Policy(batch_raw_age_s=3600, tensor_thin_age_s=1e9)
        async with await psycopg.AsyncConnection.connect(url) as conn, conn.transaction():
            return await downsample.Maintenance(policy).run(conn)

    return asyncio.run(go())


def _fold_in_timescaledb(url: str) -> None:
    """Everything older than the raw age folded, as the aggregate's creation and then its
    refresh policy do (the runs' points are from 2025, before the policy's window), and the
    raw points past the retention age dropped: what is old is read from the aggregate only."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "CALL refresh_continuous_aggregate('nnt_batch_bucket', NULL, now() - interval '1 hour')"
        )
        row = conn.execute(
            "SELECT job_id FROM timescaledb_information.jobs "
            "WHERE proc_name = 'policy_retention' AND hypertable_name = 'nnt_batch_metric'"
        ).fetchone()
        assert row is not None
        conn.execute("CALL run_job(%s)", (row[0],))


def test_it_answers_folded_batch_points_alike_from_the_aggregate_and_native_buckets(
    web_database: Any, client: Any
) -> None:
    sim, now = RUNS[0], datetime.now(UTC).replace(microsecond=0)
    later = {EPOCHS + 1: now - timedelta(days=2), EPOCHS + 2: now - timedelta(minutes=10)}
    points = [
        (sim, epoch, step, "loss", 1.0 / epoch + ((step * 7) % 11) / 100, at)
        for epoch, at in later.items()
        for step in range(20)
    ]
    timescale, native = web_database(True), web_database(False)
    for db in (timescale, native):
        write(db.url, {rows.BATCH_METRIC: points})
    _fold_in_timescaledb(timescale.url)
    # two buckets of 10 steps per epoch older than an hour, in both runs
    assert _fold_natively(native.url)["batch_buckets"] == 2 * (len(RUNS) * EPOCHS + 1)
    base = f"/api/simulations/{sim}/batches"
    urls = [base, f"{base}?metric=loss&epoch_from=3&epoch_to=4&limit=3", f"{base}?epoch_from=13"]
    seen = {}
    for form, db in (("timescaledb", timescale), ("native", native)):
        with web_on(db.url):
            client.force_login(db.user)
            seen[form] = {url: client.get(url).json() for url in urls}
    assert seen["timescaledb"] == seen["native"]
    with psycopg.connect(timescale.url) as conn:  # the 2025 points are in the aggregate only
        left = conn.execute(
            "SELECT min(epoch) FROM nnt_batch_metric WHERE simulation_id = %s", (sim,)
        )
        assert left.fetchone() == (EPOCHS + 1,)

    (series,) = seen["timescaledb"][base]["metrics"]
    reduced = [(p["epoch"], p["step"]) for p in series["points"] if p["reduced"]]
    assert reduced == [(e, s) for e in range(1, EPOCHS + 2) for s in (9, 19)]
    recent = [
        (p["epoch"], p["step"], p["min"], p["max"]) for p in series["points"] if not p["reduced"]
    ]
    assert [p[:2] for p in recent] == [(EPOCHS + 2, s) for s in range(20)]
    assert all(lo == hi for _, _, lo, hi in recent)
    last = [p for p in series["points"] if p["epoch"] == EPOCHS + 1]
    values = [1.0 / (EPOCHS + 1) + ((s * 7) % 11) / 100 for s in range(20)]
    assert [(p["value"], p["min"], p["max"]) for p in last] == [
        (
            pytest.approx(values[9]),
            pytest.approx(min(values[:10])),
            pytest.approx(max(values[:10])),
        ),
        (
            pytest.approx(values[19]),
            pytest.approx(min(values[10:])),
            pytest.approx(max(values[10:])),
        ),
    ]
    assert seen["timescaledb"][urls[1]]["truncated"] is True
