"""Exports people can open, against real PostgreSQL: the small summary zip by default, every
recorded value as NPZ on request (float32 or float16), the size estimate before downloading,
and the trained model of a finished run as a Keras file; other users' runs answer 404."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from django.db import connection

from schemas.tensors import encode_array, split
from tests.timeseries_data import diagnosed_epoch, tensor_stats, write_diagnosed

T0 = datetime(2025, 3, 1, tzinfo=UTC)
EPOCHS = 300
MODEL = {
    "class_name": "Sequential",
    "config": {
        "name": "mlp",
        "layers": [
            {"class_name": "InputLayer", "config": {"batch_shape": [None, 64], "name": "x"}},
            {"class_name": "Dense", "config": {"name": "hidden", "units": 32}},
        ],
    },
}
TENSOR_INSERT = """INSERT INTO nnt_tensor (simulation_id, layer_index, layer_name, kind, variable,
    epoch, chunk, chunks, dtype, shape, compression, data, stats, at)
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"""


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Experiment, Simulation

    exp = Experiment.objects.create(
        owner=owner, name="exp", model_json=MODEL, config={"name": "exp", "total_epochs": EPOCHS}
    )
    defaults = {
        "name": "wide mlp",
        "owner_name": owner.get_username(),
        "status": "finished",
        "epoch": EPOCHS,
        "total_epochs": EPOCHS,
        "experiment": exp,
    }
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _stats(array: np.ndarray) -> dict[str, Any]:
    flags = ["dead_units"] if array.max() <= 0 else []
    return tensor_stats(array, flags, bins=32, cosine_prev=0.99)


def _rows(sim: Any, kind: str, variable: str, epoch: int, array: np.ndarray, values: bool) -> list:
    parts = split(encode_array(array), 1 << 20) if values else [None]
    return [
        (sim.id, 1, "hidden", kind, variable, epoch, i, len(parts) if values else 0, "float32",
         list(array.shape), "zstd", part, json.dumps(_stats(array)) if i == 0 else None,
         T0 + timedelta(minutes=epoch))
        for i, part in enumerate(parts)
    ]  # fmt: skip


def _weights(epoch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(epoch)
    return {
        "kernel": rng.normal(0, 0.1, (64, 32)).astype(np.float32),
        "bias": rng.normal(0, 0.01, 32).astype(np.float32),
        "gradient": rng.normal(0, 1e-3, (64, 32)).astype(np.float32),
        "activation": np.maximum(rng.normal(0, 1, (16, 32)), 0).astype(np.float32),
    }


def _record(sim: Any, epochs: int = EPOCHS) -> None:
    """A trained run's record: four metrics and a layer's kernel, bias, gradient (values) and
    activation (statistics) at every epoch."""
    metrics = [
        (sim.id, e, name, value, T0)
        for e in range(1, epochs + 1)
        for name, value in (("loss", 1 / e), ("accuracy", 1 - 1 / e), ("val_loss", 1.1 / e),
                            ("learning_rate", 0.01))
    ]  # fmt: skip
    rows = []
    for e in range(1, epochs + 1):
        w = _weights(e)
        rows += _rows(sim, "kernel", "mlp/hidden/kernel", e, w["kernel"], True)
        rows += _rows(sim, "bias", "mlp/hidden/bias", e, w["bias"], True)
        rows += _rows(sim, "gradient", "mlp/hidden/kernel", e, w["gradient"], True)
        rows += _rows(sim, "activation", "hidden/output", e, w["activation"], False)
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            metrics,
        )
        cur.executemany(TENSOR_INSERT, rows)


def _get(client: Any, url: str) -> tuple[Any, bytes]:
    resp = client.get(url)
    body = b"".join(resp.streaming_content) if resp.streaming else resp.content
    return resp, body


@pytest.fixture()
def recorded(client: Any, make_user: Any) -> Any:
    """A 300-epoch run of the signed-in user, with everything recorded."""
    user = make_user()
    sim = _sim(user)
    _record(sim)
    client.force_login(user)
    return sim


def test_it_exports_a_small_summary_by_default_that_pandas_and_numpy_read(
    client: Any, recorded: Any
) -> None:
    resp, body = _get(client, f"/api/simulations/{recorded.id}/export")
    assert resp.status_code == 200 and resp["Content-Type"] == "application/zip"
    assert resp["Content-Disposition"] == (
        f'attachment; filename="wide-mlp-{str(recorded.id)[:8]}.zip"'
    )
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert set(zf.namelist()) == {
        "README.txt", "config.json", "model.json", "epochs.csv", "extra_metrics.csv",
        "tensor_stats.csv", "histograms.npz",
    }  # fmt: skip
    assert len(body) < 600_000, f"a summary of {EPOCHS} epochs is {len(body)} bytes"
    epochs = pd.read_csv(zf.open("epochs.csv"))
    assert list(epochs["epoch"]) == list(range(1, EPOCHS + 1))
    assert epochs["loss"].iloc[1] == 0.5 and epochs["learning_rate"].iloc[-1] == 0.01
    stats = pd.read_csv(zf.open("tensor_stats.csv"))
    assert len(stats) == 4 * EPOCHS
    assert set(stats["kind"]) == {"kernel", "bias", "gradient", "activation"}
    kernel = stats[stats["kind"] == "kernel"].set_index("epoch")
    assert kernel.loc[7, "mean"] == pytest.approx(float(_weights(7)["kernel"].mean()), rel=1e-6)
    hists = np.load(io.BytesIO(zf.read("histograms.npz")))
    assert hists["kernel.hidden.kernel.counts"].shape == (EPOCHS, 32)
    assert hists["gradient.hidden.kernel.edges"].shape == (EPOCHS, 33)
    assert list(hists["activation.hidden.output.epochs"][:3]) == [1, 2, 3]
    want, edges = np.histogram(_weights(5)["bias"].astype(np.float64), bins=32)
    assert hists["bias.hidden.bias.counts"][4].tolist() == want.tolist()
    assert np.allclose(hists["bias.hidden.bias.edges"][4], edges)
    assert "content=full" in zf.read("README.txt").decode()


def test_it_exports_a_diagnosed_runs_diagnoses_and_evidence(
    client: Any, make_user: Any, web_db_url: str
) -> None:
    user = make_user()
    sim = _sim(user, status="running", epoch=11)
    epochs = [diagnosed_epoch(sim.id, e, ["vanishing_gradients"] * (e < 4)) for e in range(1, 12)]
    epochs[-1] = diagnosed_epoch(sim.id, 11, ["nonfinite"])
    write_diagnosed(web_db_url, *([e] for e in epochs))
    client.force_login(user)
    resp, body = _get(client, f"/api/simulations/{sim.id}/export")
    assert resp.status_code == 200
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert {"diagnoses.json", "evidence.csv"} <= set(zf.namelist())
    found = json.loads(zf.read("diagnoses.json"))
    assert [(d["problem"], d["active"], d["first_epoch"], d["last_epoch"]) for d in found] == [
        ("nonfinite", True, 1, 11),
        ("vanishing_gradients", False, 1, 3),
    ]
    assert found[1]["fix"] == "what to do about vanishing_gradients"
    evidence = pd.read_csv(zf.open("evidence.csv"))
    assert len(evidence) == 11 * 2  # one row per epoch and layer
    assert list(evidence.columns[:4]) == ["epoch", "layer_index", "layer_name", "activation"]
    assert {"grad_ratio", "update_ratio", "alpha", "stable_rank", "trend_slope"} <= set(
        evidence.columns
    )
    second = evidence[(evidence["epoch"] == 7) & (evidence["layer_name"] == "dense_1")].iloc[0]
    assert second["grad_norm"] == 8.0 and second["activation"] == "relu"
    assert second["trend_loss"] == pytest.approx(2 / 7) and pd.isna(second["alpha"])
    assert list(evidence[evidence["epoch"] == 11]["trend_nonfinite"]) == ["loss", "loss"]
    assert "diagnoses.json" in zf.read("README.txt").decode()


def test_it_exports_every_value_as_npz_on_request_in_float16(client: Any, recorded: Any) -> None:
    url = f"/api/simulations/{recorded.id}/export?content=full&dtype=float16"
    resp, body = _get(client, url)
    assert resp.status_code == 200
    assert resp["Content-Disposition"].endswith(f'-{str(recorded.id)[:8]}-full-float16.zip"')
    zf = zipfile.ZipFile(io.BytesIO(body))
    assert {"kernels.npz", "biases.npz", "gradients.npz", "tensor_stats.csv"} <= set(zf.namelist())
    assert not [
        n for n in zf.namelist() if n.startswith(("kernels", "biases")) and n.endswith(".csv")
    ]
    kernels = np.load(io.BytesIO(zf.read("kernels.npz")))
    got = kernels["hidden.kernel"]
    assert got.dtype == np.float16 and got.shape == (EPOCHS, 64, 32)
    assert list(kernels["hidden.kernel.epochs"]) == list(range(1, EPOCHS + 1))
    for epoch in (1, 150, EPOCHS):
        want = _weights(epoch)["kernel"]
        assert np.array_equal(got[epoch - 1], want.astype(np.float16))
        assert np.allclose(got[epoch - 1], want, rtol=1e-3, atol=1e-4)
    gradients = np.load(io.BytesIO(zf.read("gradients.npz")))
    assert gradients["hidden.kernel"].shape == (EPOCHS, 64, 32)
    full32 = zipfile.ZipFile(
        io.BytesIO(_get(client, f"/api/simulations/{recorded.id}/export?content=full")[1])
    )
    biases = np.load(io.BytesIO(full32.read("biases.npz")))
    assert biases["hidden.bias"].dtype == np.float32
    assert np.array_equal(biases["hidden.bias"][41], _weights(42)["bias"])


def test_it_estimates_each_export_before_it_is_built(client: Any, recorded: Any) -> None:
    got = client.get(f"/api/simulations/{recorded.id}/export/estimate").json()
    assert (got["epochs"], got["tensors"], got["model_bytes"]) == (EPOCHS, 3, None)
    for dtype, query in (("float32", "?content=full"), ("float16", "?content=full&dtype=float16")):
        real = len(_get(client, f"/api/simulations/{recorded.id}/export{query}")[1])
        assert abs(got["full_bytes"][dtype] - real) < 0.1 * real, (dtype, got, real)
    summary = len(_get(client, f"/api/simulations/{recorded.id}/export")[1])
    assert 0.5 * summary < got["summary_bytes"] < 2 * summary, (got, summary)
    assert got["full_bytes"]["float16"] < 0.6 * got["full_bytes"]["float32"]


def test_it_answers_422_naming_a_bad_content_or_dtype(client: Any, recorded: Any) -> None:
    cases = (
        ("content=everything", "content", "'summary' or 'full'"),
        ("content=full&dtype=float64", "dtype", "'float32' or 'float16'"),
    )
    for query, field, fix in cases:
        resp = client.get(f"/api/simulations/{recorded.id}/export?{query}")
        assert resp.status_code == 422, query
        assert fix in resp.json()["errors"][field], resp.json()


def _blob(name: str, data: bytes) -> None:
    from django.conf import settings

    from store import runs
    from store.blobs import Blobs
    from store.database import Database

    db = Database(settings.NNT_DATABASE_URL)
    try:
        runs.ensure(db)
        Blobs(db).put_bytes(name, data)
    finally:
        db.close()


def _checkpoint_tar(folder: Path, files: dict[str, bytes], epoch: int) -> bytes:
    """A checkpoint as the orchestrator keeps it (orchestrator/shared.py keep_checkpoint)."""
    target = folder / f"epoch-{epoch:06d}"
    target.mkdir(parents=True)
    for name, data in files.items():
        (target / name).write_bytes(data)
    (folder / "latest.json").write_text(json.dumps({"epoch": epoch, "path": target.name}))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        tar.add(target, arcname=target.name)
        tar.add(folder / "latest.json", arcname="latest.json")
    return buffer.getvalue()


@pytest.fixture()
def owner(client: Any, make_user: Any) -> Iterator[Any]:
    user = make_user()
    client.force_login(user)
    yield user


def test_it_sends_the_trained_model_kept_in_the_database(
    client: Any, owner: Any, tmp_path: Path
) -> None:
    sim = _sim(owner, name="digits · Adam")
    keras_bytes = np.random.default_rng(1).bytes(9 * 1024 * 1024 + 77)  # spans three parts
    files = {"model.keras": keras_bytes, "model.npz": b"weights", "optimizer.npz": b"opt"}
    _blob(f"checkpoint/{sim.id}", _checkpoint_tar(tmp_path, files, EPOCHS))
    resp, body = _get(client, f"/api/simulations/{sim.id}/model")
    assert resp.status_code == 200 and body == keras_bytes
    assert resp["Content-Length"] == str(len(keras_bytes))
    assert resp["Content-Disposition"] == (
        f'attachment; filename="digits-Adam-{str(sim.id)[:8]}.keras"'
    )
    estimate = client.get(f"/api/simulations/{sim.id}/export/estimate").json()
    assert estimate["model_bytes"] == len(keras_bytes)


def test_it_sends_the_trained_model_from_the_run_directory_without_a_database_copy(
    client: Any, owner: Any
) -> None:
    from django.conf import settings

    sim = _sim(owner)
    root = Path(settings.RUNS_DIR) / str(sim.id) / "checkpoints"
    (root / "epoch-000300").mkdir(parents=True)
    (root / "epoch-000300" / "model.keras").write_bytes(b"PK keras file")
    (root / "latest.json").write_text(json.dumps({"epoch": 300, "path": "epoch-000300"}))
    resp, body = _get(client, f"/api/simulations/{sim.id}/model")
    assert resp.status_code == 200 and body == b"PK keras file"


def test_it_says_why_there_is_no_trained_model(
    client: Any, owner: Any, make_user: Any, tmp_path: Path
) -> None:
    cases = [
        (dict(status="running", epoch=3), "this run is running (epoch 3 of 300)"),
        (dict(status="stopped", epoch=5), "resume it to train the rest"),
        (dict(status="failed", epoch=1), "this run failed"),
        ({}, "no trained model is stored for this run"),
    ]
    for fields, text in cases:
        sim = _sim(owner, **fields)
        resp = client.get(f"/api/simulations/{sim.id}/model")
        assert resp.status_code == 404 and text in resp.json()["detail"], (fields, resp.json())
    older = _sim(owner)  # its kept checkpoint is an earlier epoch's: no model file in it
    _blob(f"checkpoint/{older.id}", _checkpoint_tar(tmp_path, {"model.npz": b"w"}, 299))
    assert client.get(f"/api/simulations/{older.id}/model").status_code == 404


def test_it_hides_another_users_exports_and_model(client: Any, make_user: Any) -> None:
    bob = make_user()
    theirs = _sim(bob)
    client.force_login(make_user())
    for suffix in ("/export", "/export?content=full", "/export/estimate", "/model"):
        resp = client.get(f"/api/simulations/{theirs.id}{suffix}")
        assert resp.status_code == 404, suffix
        assert resp.json()["detail"] == f"no simulation {theirs.id}"
    missing = uuid.uuid4()
    assert client.get(f"/api/simulations/{missing}/export/estimate").status_code == 404
