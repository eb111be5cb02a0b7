"""Simulation data API against real PostgreSQL: list search/sort, tags, bulk, metrics, tensors,
model summary, comparisons, tag groups and the export zip; other users' objects answer 404."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from django.db import connection

from schemas.tensors import encode_array, split

T0 = datetime(2025, 3, 1, tzinfo=UTC)
MODEL = {
    "class_name": "Sequential",
    "config": {
        "name": "mlp",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 8, 8], "name": "digits"}},
            {"class_name": "Flatten", "config": {"name": "flatten"}},
            {
                "class_name": "Dense",
                "config": {"name": "hidden", "units": 16, "activation": "relu"},
            },
            {
                "class_name": "Dense",
                "config": {"name": "logits", "units": 10, "activation": "linear"},
            },
        ],
    },
}


class FakePublisher:
    """Records commands instead of sending them to Kafka."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def publish(self, topic: str, key: bytes, value: bytes) -> None:
        self.sent.append(json.loads(value))


@pytest.fixture()
def published(django_ready: Any) -> Iterator[FakePublisher]:
    from web.simulations import commands

    fake = FakePublisher()
    commands.set_publisher(fake)
    yield fake
    commands.set_publisher(None)


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Experiment, Simulation

    exp = Experiment.objects.create(
        owner=owner,
        name="exp",
        model_json=MODEL,
        config={
            "name": "exp",
            "total_epochs": 4,
            "epoch_period": 1,
            "extra_metrics": [{"metric": "AUC"}],
        },
    )
    defaults = {
        "name": f"run {uuid.uuid4().hex[:6]}",
        "owner_name": owner.get_username(),
        "total_epochs": 4,
        "experiment": exp,
    }
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _metrics(sim: Any, values: dict[str, list[float]]) -> None:
    rows = [(sim.id, e + 1, name, v, T0) for name, vs in values.items() for e, v in enumerate(vs)]
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )


def _tensor(
    sim: Any,
    layer: tuple[int, str],
    kind: str,
    variable: str,
    epoch: int,
    array: np.ndarray | None,
    flags: list[str] | None = None,
    chunk_bytes: int = 64,
) -> None:
    finite = np.asarray(array if array is not None else [0.0, 1.0], dtype=np.float64).ravel()
    counts, edges = np.histogram(finite, bins=4)
    stats = {
        "mean": float(finite.mean()),
        "std": float(finite.std()),
        "min": float(finite.min()),
        "max": float(finite.max()),
        "norm": float(np.linalg.norm(finite)),
        "zero_fraction": float(np.mean(finite == 0)),
        "nonfinite": 0,
        "cosine_prev": 0.5,
        "hist_counts": counts.tolist(),
        "hist_edges": edges.tolist(),
        "flags": flags or [],
    }
    parts = split(encode_array(array), chunk_bytes) if array is not None else [None]
    shape = list(array.shape) if array is not None else []
    at = T0 + timedelta(minutes=epoch)
    rows = [
        (
            sim.id,
            layer[0],
            layer[1],
            kind,
            variable,
            epoch,
            i,
            len(parts) if array is not None else 0,
            "float32",
            shape,
            "zstd",
            part,
            json.dumps(stats) if i == 0 else None,
            at,
        )
        for i, part in enumerate(parts)
    ]
    with connection.cursor() as cur:
        cur.executemany(TENSOR_INSERT, rows)


TENSOR_INSERT = """INSERT INTO nnt_tensor (simulation_id, layer_index, layer_name, kind, variable,
    epoch, chunk, chunks, dtype, shape, compression, data, stats, at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""


def _kernel(epoch: int) -> np.ndarray:
    return (np.arange(64 * 16, dtype=np.float32).reshape(64, 16) / 1000.0) + epoch


def _record_tensors(sim: Any) -> None:
    for epoch in (1, 2, 3):
        _tensor(sim, (2, "hidden"), "kernel", "mlp/hidden/kernel", epoch, _kernel(epoch))
        _tensor(
            sim, (2, "hidden"), "bias", "mlp/hidden/bias", epoch, np.full(16, epoch, np.float32)
        )
        _tensor(
            sim,
            (2, "hidden"),
            "gradient",
            "mlp/hidden/kernel",
            epoch,
            _kernel(0) * 0.01,
            flags=["vanishing_gradient"] if epoch == 3 else [],
        )
        _tensor(
            sim,
            (2, "hidden"),
            "activation",
            "hidden/output",
            epoch,
            None,
            flags=["dead_units"] if epoch == 2 else [],
        )
    _tensor(sim, (3, "logits"), "kernel", "mlp/logits/kernel", 1, np.ones((16, 10), np.float32))
    _tensor(sim, (3, "logits"), "bias", "mlp/logits/bias", 1, np.zeros(10, np.float32))


def _login(client: Any, user: Any) -> Any:
    client.force_login(user)
    return client


def _csrf(client: Any) -> dict[str, str]:
    client.get("/simulations/")
    return {"HTTP_X_CSRFTOKEN": client.cookies["csrftoken"].value}


def test_it_searches_filters_and_sorts_the_list(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    a = _sim(ada, name="alpha mnist", status="running", epoch=1, total_epochs=4, tags=["sweep"])
    b = _sim(ada, name="beta", status="finished", epoch=4, total_epochs=4, tags=["MNIST-big"])
    c = _sim(ada, name="gamma", status="running", epoch=3, total_epochs=4)
    _sim(bob, name="alpha of bob", tags=["sweep"])
    _login(client, ada)
    names = lambda resp: [s["name"] for s in resp.json()]  # noqa: E731
    assert names(client.get("/api/simulations?q=mnist&sort=name")) == ["alpha mnist", "beta"]
    assert names(client.get("/api/simulations?status=running&sort=-progress")) == [
        "gamma",
        "alpha mnist",
    ]
    resp = client.get("/api/simulations?sort=progress&limit=2&offset=1")
    assert names(resp) == ["gamma", "beta"] and resp["X-Total-Count"] == "3"
    assert names(client.get("/api/simulations?tag=sweep")) == ["alpha mnist"]
    assert {str(a.id), str(b.id), str(c.id)} == {
        s["id"] for s in client.get("/api/simulations").json()
    }
    assert client.get("/api/tags").json() == ["MNIST-big", "sweep"]


def test_it_adds_and_removes_tags(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    sim = _sim(ada, tags=["a"])
    _login(client, ada)
    headers = _csrf(client)
    url = f"/api/simulations/{sim.id}/tags"
    resp = client.post(url, {"tag": "  lr  sweep "}, content_type="application/json", **headers)
    assert resp.status_code == 200 and resp.json()["tags"] == ["a", "lr sweep"]
    assert client.post(url, {"tag": "a"}, content_type="application/json", **headers).json()[
        "tags"
    ] == ["a", "lr sweep"]
    assert (
        client.post(url, {"tag": "   "}, content_type="application/json", **headers).status_code
        == 422
    )
    resp = client.delete(url, {"tag": "a"}, content_type="application/json", **headers)
    assert resp.json()["tags"] == ["lr sweep"]
    sim.refresh_from_db()
    assert sim.tags == ["lr sweep"]
    _login(client, bob)
    headers = _csrf(client)
    assert (
        client.post(url, {"tag": "x"}, content_type="application/json", **headers).status_code
        == 404
    )
    assert (
        client.delete(
            url, {"tag": "lr sweep"}, content_type="application/json", **headers
        ).status_code
        == 404
    )


def test_it_sends_bulk_commands_only_for_own_runs(
    client: Any, make_user: Any, published: FakePublisher
) -> None:
    ada, bob = make_user(), make_user()
    one, two, theirs = _sim(ada, status="running"), _sim(ada, status="running"), _sim(bob)
    _login(client, ada)
    headers = _csrf(client)
    resp = client.post(
        "/api/simulations/bulk",
        {"ids": [str(one.id), str(two.id)], "action": "pause"},
        content_type="application/json",
        **headers,
    )
    assert resp.status_code == 202
    assert [(c["type"], c["simulation_id"]) for c in published.sent] == [
        ("pause", str(one.id)),
        ("pause", str(two.id)),
    ]
    assert all(c["issued_by"] == ada.get_username() for c in published.sent)
    resp = client.post(
        "/api/simulations/bulk",
        {"ids": [str(one.id), str(theirs.id)], "action": "delete"},
        content_type="application/json",
        **headers,
    )
    assert resp.status_code == 404 and len(published.sent) == 2  # nothing sent for a mixed request
    bad = client.post(
        "/api/simulations/bulk",
        {"ids": [str(one.id)], "action": "explode"},
        content_type="application/json",
        **headers,
    )
    assert bad.status_code == 422


def test_it_downsamples_metrics_with_lttb_and_keeps_a_spike(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    loss = [1.0 / (e + 1) for e in range(300)]
    loss[150] = 5.0  # a spike an evenly spaced pick would miss
    _metrics(sim, {"loss": loss})
    _login(client, ada)
    small = client.get(f"/api/simulations/{sim.id}/metrics?max_points=20").json()["loss"]
    assert len(small["epochs"]) == 20 and small["epochs"][0] == 1 and small["epochs"][-1] == 300
    assert 151 in small["epochs"] and 5.0 in small["values"]
    assert len(client.get(f"/api/simulations/{sim.id}/metrics").json()["loss"]["epochs"]) == 300


def test_it_summarises_the_model_from_json_and_recorded_shapes(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada, status="finished", message="test: accuracy=0.9120, loss=0.3001")
    _record_tensors(sim)
    _login(client, ada)
    got = client.get(f"/api/simulations/{sim.id}/summary").json()
    layers = {row["name"]: row for row in got["layers"]}
    assert [r["type"] for r in got["layers"]] == ["InputLayer", "Flatten", "Dense", "Dense"]
    assert layers["flatten"]["output_shape"] == "(None, 64)"
    assert (
        layers["hidden"]["output_shape"] == "(None, 16)"
        and layers["hidden"]["params"] == 64 * 16 + 16
    )
    assert layers["logits"]["params"] == 16 * 10 + 10 and got["total"] == 64 * 16 + 16 + 170
    assert got["test_metrics"] == {"accuracy": 0.912, "loss": 0.3001}
    assert client.get(f"/api/simulations/{sim.id}").json()["test_metrics"]["accuracy"] == 0.912


def test_it_returns_tensor_history_with_histograms_and_flags(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    _record_tensors(sim)
    _login(client, ada)
    series = client.get(f"/api/simulations/{sim.id}/tensors").json()
    by = {(s["layer_name"], s["kind"]): s for s in series}
    kernel = by[("hidden", "kernel")]
    assert kernel["epochs"] == [1, 2, 3] and kernel["shape"] == [64, 16]
    assert len(kernel["hist"]["edges"]) == 33 and len(kernel["hist"]["density"]) == 3
    assert all(abs(sum(row) - 1) < 1e-3 for row in kernel["hist"]["density"])
    assert by[("hidden", "gradient")]["flags"] == [[], [], ["vanishing_gradient"]]
    assert by[("hidden", "activation")]["flags"][1] == ["dead_units"]
    assert by[("hidden", "activation")]["stats"]["zero_fraction"] == [0.5, 0.5, 0.5]
    only = client.get(f"/api/simulations/{sim.id}/tensors?kind=bias").json()
    assert {s["kind"] for s in only} == {"bias"}


def test_it_samples_the_same_indexes_every_epoch(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada)
    _record_tensors(sim)
    _login(client, ada)
    url = f"/api/simulations/{sim.id}/tensors/values?key=2:kernel:mlp/hidden/kernel&max_values=100"
    got = client.get(url).json()
    assert got["epochs"] == [1, 2, 3] and got["size"] == 1024 and got["shape"] == [64, 16]
    assert len(got["index"]) == 100 and got["index"] == sorted(set(got["index"]))
    flat = [_kernel(e).reshape(-1) for e in (1, 2, 3)]
    for i, epoch_values in enumerate(got["values"]):
        assert epoch_values == pytest.approx([float(flat[i][j]) for j in got["index"]], rel=1e-6)
    assert client.get(url).json()["index"] == got["index"]
    missing = client.get(f"/api/simulations/{sim.id}/tensors/values?key=9:kernel:nope")
    assert missing.status_code == 404


def test_it_compares_two_runs_per_epoch(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    a, b, theirs = _sim(ada), _sim(ada, name="baseline"), _sim(bob)
    _metrics(a, {"loss": [1.0, 0.8, 0.5], "accuracy": [0.5, 0.6, 0.7]})
    _metrics(b, {"loss": [0.9, 0.9]})
    _login(client, ada)
    got = client.get(f"/api/simulations/{a.id}/compare?other={b.id}").json()
    assert got["other_name"] == "baseline" and list(got["metrics"]) == ["loss"]
    assert got["metrics"]["loss"]["epochs"] == [1, 2]
    assert got["metrics"]["loss"]["diff"] == pytest.approx([0.1, -0.1])
    assert client.get(f"/api/simulations/{a.id}/compare?other={theirs.id}").status_code == 404
    assert client.get(f"/api/simulations/{theirs.id}/compare?other={a.id}").status_code == 404


def test_it_aggregates_a_tag_over_own_runs_only(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    tag = f"grp{uuid.uuid4().hex[:6]}"
    one, two, theirs = _sim(ada, tags=[tag]), _sim(ada, tags=[tag]), _sim(bob, tags=[tag])
    _metrics(one, {"loss": [1.0, 0.5]})
    _metrics(two, {"loss": [3.0, 0.7]})
    _metrics(theirs, {"loss": [100.0, 100.0]})
    _login(client, ada)
    got = client.get(f"/api/tags/aggregates?tag={tag}").json()
    assert got["simulations"] == 2
    loss = got["metrics"]["loss"]
    assert loss["epochs"] == [1, 2] and loss["mean"] == pytest.approx([2.0, 0.6])
    assert loss["min"] == [1.0, 0.5] and loss["max"] == [3.0, 0.7] and loss["count"] == [2, 2]
    assert client.get("/api/tags/aggregates?tag=nobody-has-this").status_code == 404


def test_it_exports_a_zip_with_epochs_and_tensors(client: Any, make_user: Any) -> None:
    ada = make_user()
    sim = _sim(ada, status="finished", message="test: accuracy=0.5000, loss=1.0000")
    _metrics(
        sim,
        {
            "loss": [1.0, 0.8, 0.5],
            "accuracy": [0.5, 0.6, 0.7],
            "auc": [0.6, 0.7, 0.8],
            "learning_rate": [0.01, 0.01, 0.005],
        },
    )
    _record_tensors(sim)
    _login(client, ada)
    resp = client.get(f"/api/simulations/{sim.id}/export")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/zip"
    assert resp.streaming and "attachment" in resp["Content-Disposition"]
    zf = zipfile.ZipFile(io.BytesIO(b"".join(resp.streaming_content)))
    assert set(zf.namelist()) == {  # the summary: statistics, never every value
        "README.txt",
        "config.json",
        "model.json",
        "epochs.csv",
        "extra_metrics.csv",
        "tensor_stats.csv",
        "histograms.npz",
    }
    epochs = list(csv.DictReader(io.StringIO(zf.read("epochs.csv").decode())))
    assert [r["epoch"] for r in epochs] == ["1", "2", "3"] and epochs[2]["loss"] == "0.5"
    assert epochs[2]["learning_rate"] == "0.005" and epochs[0]["auc"] == "0.6"
    extra = list(csv.reader(io.StringIO(zf.read("extra_metrics.csv").decode())))
    assert extra[0] == ["epoch", "auc"] and len(extra) == 4
    stats = list(csv.DictReader(io.StringIO(zf.read("tensor_stats.csv").decode())))
    assert any(r["flags"] == "vanishing_gradient" for r in stats)
    acts = [r for r in stats if r["kind"] == "activation"]
    assert [r["epoch"] for r in acts] == ["1", "2", "3"] and acts[1]["flags"] == "dead_units"
    hists = np.load(io.BytesIO(zf.read("histograms.npz")))
    assert list(hists["kernel.hidden.kernel.epochs"]) == [1, 2, 3]
    assert hists["kernel.hidden.kernel.counts"][0].sum() == 64 * 16
    config = json.loads(zf.read("config.json"))
    assert config["test_metrics"] == {"accuracy": 0.5, "loss": 1.0}
    assert config["model_summary"]["layers"][2]["params"] == 64 * 16 + 16

    full = client.get(f"/api/simulations/{sim.id}/export?content=full")
    zf = zipfile.ZipFile(io.BytesIO(b"".join(full.streaming_content)))
    assert {"kernels.npz", "biases.npz", "gradients.npz", "tensor_stats.csv"} <= set(zf.namelist())
    assert not [n for n in zf.namelist() if n in ("kernels.csv", "biases.csv", "gradients.csv")]
    kernels = np.load(io.BytesIO(zf.read("kernels.npz")))
    assert kernels["hidden.kernel"].shape == (3, 64, 16)
    assert np.array_equal(kernels["hidden.kernel"][1], _kernel(2))
    assert list(kernels["hidden.kernel.epochs"]) == [1, 2, 3] and kernels[
        "logits.kernel"
    ].shape == (1, 16, 10)
    biases = np.load(io.BytesIO(zf.read("biases.npz")))
    assert biases["hidden.bias"][2].tolist() == [3.0] * 16


def test_it_exports_why_a_run_failed_in_one_line_and_in_full(client: Any, make_user: Any) -> None:
    ada = make_user()
    line = "epoch 2, loss 'mse': incompatible shapes [32,3] vs [32,10] — check the label shape"
    full = "Traceback (most recent call last):\n  File ...\nValueError: Dimensions must be equal"
    sim = _sim(ada, status="failed", epoch=1, message=line, error=full)
    _login(client, ada)
    detail = client.get(f"/api/simulations/{sim.id}").json()
    assert (detail["message"], detail["error"]) == (line, full)
    resp = client.get(f"/api/simulations/{sim.id}/export")
    zf = zipfile.ZipFile(io.BytesIO(b"".join(resp.streaming_content)))
    assert zf.read("error.txt").decode() == f"{line}\n\n{full}\n"
    config = json.loads(zf.read("config.json"))["simulation"]
    assert (config["message"], config["error"]) == (line, full)
    assert "error.txt" in zf.read("README.txt").decode()
    finished = _sim(ada, status="finished", message="test: loss=0.1000")
    names = zipfile.ZipFile(
        io.BytesIO(b"".join(client.get(f"/api/simulations/{finished.id}/export").streaming_content))
    ).namelist()
    assert "error.txt" not in names


def test_it_hides_every_data_endpoint_of_other_users(client: Any, make_user: Any) -> None:
    ada, bob = make_user(), make_user()
    theirs = _sim(bob, tags=["shared-name"])
    _login(client, ada)
    for suffix in (
        "",
        "/metrics",
        "/summary",
        "/tensors",
        "/tensors/values?key=1:kernel:x",
        f"/compare?other={theirs.id}",
        "/export",
    ):
        assert client.get(f"/api/simulations/{theirs.id}{suffix}").status_code == 404, suffix
    assert client.get("/api/tags/aggregates?tag=shared-name").status_code == 404
    admin = make_user(staff=True)
    _login(client, admin)
    assert client.get(f"/api/simulations/{theirs.id}/export").status_code == 200
