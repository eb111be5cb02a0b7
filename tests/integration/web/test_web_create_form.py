"""The create-experiment page against real PostgreSQL and Kafka: every appendix-A field, JSON
mode, per-field errors, and a submit that lands on the new experiment's simulations."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.streamworker import find_command

MODEL = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}
APPENDIX_A = (
    "name",
    "dataset_train",
    "dataset_test",
    "dataset_val",
    "batch_size",
    "total_epochs",
    "epoch_period",
    "optimizer",
    "optimizer_conf",
    "loss_function",
    "loss_conf",
    "learning_rate",
    "k_fold_validation",
    "k_fold_tag",
    "metric",
    "metric_conf",
    "tags",
    "train_feature_name",
    "train_label_name",
    "test_feature_name",
    "test_label_name",
    "val_feature_name",
    "val_label_name",
    "label_column",
    "collect_weights",
    "collect_biases",
    "collect_gradients",
    "collect_activations",
    "collect_layers",
    "collect_full_tensor_period",
    "collect_dtype",
)


def _model() -> SimpleUploadedFile:
    return SimpleUploadedFile("model.json", json.dumps(MODEL).encode(), "application/json")


def _submit(client: Any, data: dict[str, Any]) -> Any:
    html = client.get("/experiments/new/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    return client.post("/experiments/new/", data | {"csrfmiddlewaretoken": token})


def _field_block(html: str, name: str) -> str:
    """The markup of one field, from its wrapper to the next field."""
    start = html.index(f'data-field="{name}"')
    return html[start : html.find('data-field="', start + 10)]


def _form(**extra: Any) -> dict[str, Any]:
    base = {
        "mode": "form",
        "name": f"form-{uuid.uuid4().hex[:6]}",
        "batch_size": "16",
        "total_epochs": "4",
        "epoch_period": "2",
        "optimizer": ["Adam", "SGD"],
        "optimizer_conf": ['{"beta_1": 0.85}', ""],
        "loss_function": ["SparseCategoricalCrossentropy"],
        "loss_conf": ['{"from_logits": true}'],
        "learning_rate": ["0.01", "0.001", "0.0001"],
        "k_fold_validation": "1",
        "tags": "mnist, form",
        "metric": ["AUC"],
        "metric_conf": [""],
        "train_feature_name": "x_train",
        "train_label_name": "y_train",
        "collect_weights": "on",
        "collect_gradients": "on",
        "collect_layers": "dense, dense_1",
        "collect_full_tensor_period": "2",
        "collect_dtype": "float16",
        "collect_probe_size": "32",
        "dataset_test_url": "https://example.org/test.npz",
        "model": _model(),
    }
    return base | extra


def _create_command(bootstrap: str, experiment_id: str) -> Any:
    return find_command(bootstrap, experiment_id)


def test_it_sends_anonymous_users_to_login(client: Any) -> None:
    resp = client.get("/experiments/new/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")


def test_it_offers_every_appendix_a_field(client: Any, user: Any) -> None:
    html = client.get("/experiments/new/").content.decode()
    names = set(re.findall(r'name="([a-z_0-9]+)"', html))
    for field in APPENDIX_A:
        if field.startswith("dataset_"):
            assert {f"{field}_file", f"{field}_url"} <= names, field
        else:
            assert field in names, field
    assert {"model", "config_json", "config_file", "mode"} <= names
    assert 'id="preview-count"' in html and "experiment-form.js" in html


def test_it_creates_the_grid_and_lands_on_its_simulations(
    client: Any, user: Any, real_kafka: str, django_ready: Path
) -> None:
    from web.simulations.models import Experiment, Simulation

    data = b"npz-bytes-" + uuid.uuid4().bytes
    resp = _submit(client, _form(dataset_train_file=SimpleUploadedFile("train.npz", data)))
    assert resp.status_code == 302, resp.content.decode()[:2000]
    match = re.fullmatch(r"/simulations/\?experiment=([0-9a-f-]{36})", resp["Location"])
    assert match
    experiment = Experiment.objects.get(pk=match[1])
    sims = list(Simulation.objects.filter(experiment=experiment).order_by("index"))
    assert len(sims) == 6 and {s.status for s in sims} == {"queued"} and sims[0].owner == user
    assert sims[0].tags == ["mnist", "form"] and sims[0].total_epochs == 4
    config = experiment.config
    assert config["optimizers"][0] == {"optimizer": "Adam", "conf": {"beta_1": 0.85}}
    assert config["loss_functions"][0]["conf"] == {"from_logits": True}
    assert config["learning_rates"] == [0.01, 0.001, 0.0001] and config["batch_size"] == 16
    assert config["extra_metrics"] == [{"metric": "AUC", "conf": {}}]
    assert config["collect"] == {
        "weights": True,
        "biases": False,
        "gradients": True,
        "activations": False,
        "layers": ["dense", "dense_1"],
        "full_tensor_period": 2,
        "dtype": "float16",
        "probe_size": 32,
        "diagnose": True,
    }
    ref = f"stored:{hashlib.sha256(data).hexdigest()}.npz"
    assert (
        config["dataset_train"] == ref and config["dataset_test"] == "https://example.org/test.npz"
    )
    assert (django_ready / "datasets" / ref.removeprefix("stored:")).read_bytes() == data
    command = _create_command(real_kafka, str(experiment.pk))
    assert command is not None and command.type == "create" and command.experiment["model"] == MODEL
    assert "6 simulations queued" in client.get(resp["Location"]).content.decode()


def test_it_creates_from_a_pasted_json_configuration(
    client: Any, user: Any, real_kafka: str
) -> None:
    from web.simulations.models import Simulation

    config = {
        "name": "json-mode",
        "dataset_train": "https://example.org/train.csv",
        "optimizers": [{"optimizer": "Adam"}],
        "loss_function": [{"loss_function": "Huber"}],
        "learning_rates": [0.1],
        "k-fold_validation": 3,
        "k-fold_tag": "cv3",
        "label_column": "y",
    }
    resp = _submit(
        client,
        {
            "mode": "json",
            "config_json": json.dumps(config),
            "model": _model(),
            "optimizer": "ignored in JSON mode",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    experiment_id = resp["Location"].split("=")[1]
    sims = list(Simulation.objects.filter(experiment_id=experiment_id))
    assert len(sims) == 3 and all("cv3" in s.tags for s in sims)


def test_it_creates_from_an_uploaded_json_file(client: Any, user: Any, real_kafka: str) -> None:
    from web.simulations.models import Simulation

    config = {"name": "json-file", "learning_rates": [0.1, 0.2]}
    upload = SimpleUploadedFile("config.json", json.dumps(config).encode(), "application/json")
    resp = _submit(
        client,
        {
            "mode": "json",
            "config_file": upload,
            "model": _model(),
            "dataset_train_url": "https://example.org/train.npz",
        },
    )
    assert resp.status_code == 302, resp.content.decode()[:2000]
    assert Simulation.objects.filter(experiment_id=resp["Location"].split("=")[1]).count() == 2


def test_it_shows_each_error_next_to_its_field(client: Any, user: Any) -> None:
    from web.simulations.models import Experiment

    before = Experiment.objects.count()
    resp = _submit(
        client,
        _form(
            batch_size="0",
            total_epochs="abc",
            learning_rate=["0.1", "zero"],
            optimizer_conf=['{"beta_1": ', ""],
            collect_full_tensor_period="0",
            model=SimpleUploadedFile("model.json", b"not json"),
        ),
    )
    html = resp.content.decode()
    assert resp.status_code == 400 and "Please fix the fields marked below" in html
    assert "greater than or equal to 1" in _field_block(html, "batch_size")
    assert "valid integer" in _field_block(html, "total_epochs")
    assert "greater than or equal to 1" in _field_block(html, "collect_full_tensor_period")
    assert re.search(
        r'value="zero"[^>]*>.*?<div class="error row-error">Input should be a valid number',
        html,
        re.S,
    )
    assert re.search(
        r'value="\{&quot;beta_1&quot;: "[^>]*>.*?row-error">Options must be JSON', html, re.S
    )
    assert "Not a Keras model JSON file" in html
    assert 'value="0.1"' in html and 'name="learning_rate"' in html  # what was typed stays
    assert Experiment.objects.count() == before


def test_it_names_a_missing_dataset_and_model(client: Any, user: Any) -> None:
    resp = _submit(
        client,
        {
            "mode": "form",
            "optimizer": "Adam",
            "loss_function": "Huber",
            "learning_rate": "0.1",
            "epoch_period": "5",
            "total_epochs": "2",
        },
    )
    html = resp.content.decode()
    assert resp.status_code == 400
    assert (
        "Upload a training dataset or give its URL" in html
        and "Upload the Keras model JSON file" in html
    )


def test_it_puts_a_cross_field_error_on_the_field_it_names(client: Any, user: Any) -> None:
    resp = _submit(
        client,
        _form(epoch_period="5", total_epochs="2", dataset_train_url="https://example.org/t.npz"),
    )
    assert resp.status_code == 400
    assert "epoch_period must not exceed total_epochs" in _field_block(
        resp.content.decode(), "epoch_period"
    )


def test_it_requires_at_least_one_of_each_grid_axis(client: Any, user: Any) -> None:
    resp = _submit(
        client,
        _form(
            optimizer=[" "],
            optimizer_conf=[""],
            learning_rate=[],
            dataset_train_url="https://example.org/t.npz",
        ),
    )
    html = resp.content.decode()
    assert resp.status_code == 400 and html.count("List should have at least 1 item") == 2


def test_it_refuses_a_bad_dataset_file_type(client: Any, user: Any) -> None:
    resp = _submit(
        client,
        _form(
            dataset_val_file=SimpleUploadedFile("val.exe", b"MZ"),
            dataset_train_url="https://example.org/t.npz",
        ),
    )
    assert resp.status_code == 400 and "is not one of .npz" in resp.content.decode()


def test_it_lists_json_errors_under_the_json_field(client: Any, user: Any) -> None:
    bad_json = _submit(client, {"mode": "json", "config_json": "{nope", "model": _model()})
    assert bad_json.status_code == 400 and "Not valid JSON" in bad_json.content.decode()
    resp = _submit(
        client,
        {
            "mode": "json",
            "model": _model(),
            "config_json": json.dumps(
                {"dataset_train": "https://x.org/a.npz", "batch_size": -1, "surprise": 1}
            ),
        },
    )
    html = resp.content.decode()
    block = html[html.index('id="err_config"') :]
    assert "batch_size: Input should be greater than or equal to 1" in block
    assert "surprise: Extra inputs are not permitted" in block
    assert "surprise" in html[html.index("<textarea") : html.index("</textarea>")]  # text kept


def test_it_shows_kafka_trouble_without_creating_rows(client: Any, user: Any) -> None:
    from web.simulations.models import Experiment

    before = Experiment.objects.count()
    resp = _submit(client, _form(dataset_train_url="https://example.org/t.npz"))
    html = resp.content.decode()
    assert resp.status_code == 503 and re.search(r"role=\"alert\"[^>]*>.*?Kafka", html, re.S)
    assert Experiment.objects.count() == before


def test_it_previews_a_configuration_over_the_api(client: Any, user: Any) -> None:
    client.get("/experiments/new/")
    token = client.cookies["csrftoken"].value
    ok = client.post(
        "/api/experiments/preview",
        {
            "name": "p",
            "optimizers": [{"optimizer": "Adam"}, {"optimizer": "SGD"}],
            "learning_rates": [0.1, 0.01],
            "k_fold_validation": 2,
        },
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    ).json()
    assert ok["valid"] and ok["simulations"] == 8 and ok["names"][0] == "p · Adam · lr 0.1 · fold 1"
    bad = client.post(
        "/api/experiments/preview",
        {"batch_size": 0},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=token,
    ).json()
    assert not bad["valid"] and "batch_size" in bad["errors"]


KEPT = re.compile(r'name="kept_(\w+)" value="([A-Za-z0-9_-]+)"')


def test_it_keeps_the_chosen_files_across_an_error_for_their_owner_only(
    client: Any, user: Any, make_user: Any, real_kafka: str, django_ready: Path
) -> None:
    from web.simulations.models import Experiment

    data = {ds: f"{ds}-bytes-".encode() + uuid.uuid4().bytes for ds in ("train", "test", "val")}
    files = {f"dataset_{ds}_file": SimpleUploadedFile(f"{ds}.npz", b) for ds, b in data.items()}
    fields = _form(dataset_test_url="", **files)
    resp = _submit(client, fields | {"batch_size": "0"})  # the one mistake
    html = resp.content.decode()
    assert resp.status_code == 400 and "greater than or equal to 1" in _field_block(
        html, "batch_size"
    )
    size = len(json.dumps(MODEL).encode())
    assert f"model.json ({size} B)</b> — kept; choose another file to replace" in html
    for ds, raw in data.items():
        assert f"{ds}.npz ({len(raw)} B)</b> — kept; choose another file to replace" in html
    tokens = dict(KEPT.findall(html))
    assert set(tokens) == {"model", "dataset_train", "dataset_test", "dataset_val"}
    assert (django_ready / "kept-uploads").stat().st_mode & 0o077 == 0  # the web's user only
    fixed = {k: v for k, v in fields.items() if k != "model" and not k.endswith("_file")}
    fixed |= {f"kept_{field}": token for field, token in tokens.items()}

    bob = make_user()  # another user holding the references gets none of the files
    client.force_login(bob)
    stolen = _submit(client, fixed)
    html = stolen.content.decode()
    assert stolen.status_code == 400 and "Upload the Keras model JSON file" in html
    assert "Upload a training dataset or give its URL" in html and "kept;" not in html
    assert not Experiment.objects.filter(owner=bob).exists()

    client.force_login(user)  # the owner fixes the field and submits without choosing files
    resp = _submit(client, fixed)
    assert resp.status_code == 302, resp.content.decode()[:2000]
    experiment = Experiment.objects.get(pk=resp["Location"].rsplit("=", 1)[1])
    assert experiment.owner == user and experiment.model_json == MODEL
    for ds, raw in data.items():
        ref = f"stored:{hashlib.sha256(raw).hexdigest()}.npz"
        assert experiment.config[f"dataset_{ds}"] == ref
        assert (django_ready / "datasets" / ref.removeprefix("stored:")).read_bytes() == raw
    again = _submit(client, fixed)  # used up: kept files go with the submission that used them
    assert again.status_code == 400 and "Upload the Keras model JSON file" in again.content.decode()
