"""POST /api/experiments: validation, storage, all-or-nothing creation, the real `create`."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from schemas.kafkaauth import KafkaSecurity
from tests.streamworker import find_command

MODEL = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}


def _config(**extra: Any) -> str:
    base = {
        "name": f"exp-{uuid.uuid4().hex[:6]}",
        "total_epochs": 3,
        "optimizers": [{"optimizer": "Adam"}, {"optimizer": "SGD"}],
        "learning_rates": [0.01, 0.001],
        "tags": ["grid"],
    }
    return json.dumps(base | extra)


def _post(client: Any, token: str, config: str, **files: SimpleUploadedFile) -> Any:
    data: dict[str, Any] = {
        "config": config,
        "model": SimpleUploadedFile("model.json", json.dumps(MODEL).encode()),
    }
    return client.post("/api/experiments", data | files, HTTP_AUTHORIZATION=f"Bearer {token}")


@pytest.fixture()
def token(client: Any, make_user: Any) -> str:
    user = make_user()
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": "pw-long-enough-1"},
        content_type="application/json",
    )
    return resp.json()["token"]


@pytest.fixture()
def real_kafka(kafka_bootstrap: str) -> Iterator[str]:
    """Publish through the real producer to the session's broker."""
    from web.simulations import commands

    commands.set_publisher(commands.KafkaPublisher(kafka_bootstrap, 10, KafkaSecurity()))
    yield kafka_bootstrap
    commands.set_publisher(None)


def test_it_names_each_bad_field(client: Any, token: str) -> None:
    resp = _post(
        client,
        token,
        _config(learning_rates=[-1], batch_size=0),
        dataset_train=SimpleUploadedFile("t.csv", b"a,b\n"),
    )
    assert resp.status_code == 422
    errors = resp.json()["errors"]
    assert "learning_rates" in errors and "batch_size" in errors


def test_it_requires_a_training_dataset(client: Any, token: str) -> None:
    resp = _post(client, token, _config())
    assert resp.status_code == 422 and "dataset_train" in resp.json()["errors"]


def test_it_rejects_bad_json_and_file_types(client: Any, token: str) -> None:
    assert _post(client, token, "{nope").json()["errors"].keys() == {"config"}
    resp = _post(client, token, _config(), dataset_train=SimpleUploadedFile("x.exe", b"MZ"))
    assert resp.status_code == 422 and "dataset_train" in resp.json()["errors"]


def test_it_leaves_no_rows_when_kafka_is_down(client: Any, token: str) -> None:
    from web.simulations.models import Experiment, Simulation

    before = (Experiment.objects.count(), Simulation.objects.count())
    resp = _post(client, token, _config(dataset_train="https://example.org/train.csv"))
    assert resp.status_code == 503
    assert "Kafka" in resp.json()["detail"]
    assert (Experiment.objects.count(), Simulation.objects.count()) == before


def test_it_creates_the_grid_and_publishes_create(
    client: Any, token: str, real_kafka: str, django_ready: Path
) -> None:

    from schemas.experiment import ExperimentConfig, expand
    from web.simulations.models import Simulation

    data = os.urandom(64)
    resp = _post(client, token, _config(), dataset_train=SimpleUploadedFile("train.npz", data))
    assert resp.status_code == 201, resp.content
    body = resp.json()
    experiment_id = uuid.UUID(body["experiment_id"])
    sims = list(Simulation.objects.filter(experiment_id=experiment_id).order_by("index"))
    assert [str(s.id) for s in sims] == body["simulations"] and len(sims) == 4
    assert {s.status for s in sims} == {"queued"} and sims[0].tags == ["grid"]
    ref = f"stored:{hashlib.sha256(data).hexdigest()}.npz"
    assert (django_ready / "datasets" / ref.removeprefix("stored:")).read_bytes() == data

    found = find_command(real_kafka, str(experiment_id))
    assert found is not None and found.type == "create"
    assert found.experiment["dataset_train"] == ref and found.experiment["model"] == MODEL
    config = ExperimentConfig.model_validate(
        {k: v for k, v in found.experiment.items() if k != "model"}
    )
    assert [p.simulation_id for p in expand(experiment_id, config)] == [s.id for s in sims]


def test_it_names_a_missing_model_file(client: Any, token: str) -> None:
    resp = client.post(
        "/api/experiments", {"config": _config()}, HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert resp.status_code == 422
    assert "model" in resp.json()["errors"]
