"""Upload limits (web/simulations/uploads.py, web/server.py): a file, a submission or a request
body over its limit is refused with 413 naming the field, its size and the limit's variable,
and nothing of it is stored; a model JSON within its limit travels to Kafka whole."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
from django.test import Client, override_settings

from tests.integration.web.conftest import record_run

MIB = 1024 * 1024
MODEL = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}


def _config(**fields: Any) -> str:
    base = {"name": f"limits-{uuid.uuid4().hex[:6]}", "total_epochs": 1, "learning_rates": [0.1]}
    return json.dumps(base | fields)


def _model(size: int = 0) -> bytes:
    """A model JSON document of about `size` bytes (the web does not look inside)."""
    doc = json.loads(json.dumps(MODEL))
    doc["config"]["padding"] = "x" * max(0, size - 60)
    return json.dumps(doc).encode()


def _csv(size: int) -> bytes:
    row = b"1,2,0\n"
    return b"a,b,label\n" + row * (size // len(row))


def _token(user: Any) -> str:
    from web.accounts.models import ApiToken

    return ApiToken.issue(user, name="limits")[1]


def _stored(home: Path) -> set[Path]:
    """Every file the web keeps: datasets and upload temp files."""
    return {p for d in ("datasets", "tmp") if (home / d).exists() for p in (home / d).iterdir()}


def _post(web: Any, user: Any, files: dict[str, tuple[str, bytes]], **form: str) -> Any:
    return requests.post(
        f"{web.url}/api/experiments",
        data={"config": _config()} | form,
        files=files,
        headers={"Authorization": f"Bearer {_token(user)}"},
        timeout=60,
    )


def test_it_refuses_a_dataset_over_its_limit_with_413_naming_it(
    small_limits_web: Any, make_user: Any
) -> None:
    from web.simulations.models import Simulation

    user, before = make_user(), _stored(small_limits_web.home)
    files = {"model": ("m.json", _model()), "dataset_train": ("train.csv", _csv(MIB * 3 // 2))}
    resp = _post(small_limits_web, user, files)
    assert resp.status_code == 413, resp.text
    body = resp.json()
    assert body["errors"]["dataset_train"].startswith(
        "1.5 MiB is over the 1 MiB limit (NNT_MAX_UPLOAD_BYTES); give a smaller file"
    ), body
    assert "dataset_train: 1.5 MiB is over the 1 MiB limit" in body["detail"]
    assert not Simulation.objects.filter(owner=user).exists()
    assert _stored(small_limits_web.home) == before, "a refused upload left a file"


def test_it_refuses_files_that_together_pass_the_submission_limit(
    small_limits_web: Any, make_user: Any
) -> None:
    user, before = make_user(), _stored(small_limits_web.home)
    part = _csv(MIB * 8 // 10)  # each under the 1 MiB file limit, 2.4 MiB together
    files = {
        "model": ("m.json", _model()),
        "dataset_train": ("train.csv", part),
        "dataset_test": ("test.csv", part),
        "dataset_val": ("val.csv", part),
    }
    resp = _post(small_limits_web, user, files)
    assert resp.status_code == 413, resp.text
    errors = resp.json()["errors"]
    assert set(errors) == {"dataset_val"}, errors
    assert "over the 2 MiB limit (NNT_MAX_EXPERIMENT_UPLOAD_BYTES)" in errors["dataset_val"]
    assert _stored(small_limits_web.home) == before


def test_it_refuses_a_model_over_its_limit(small_limits_web: Any, make_user: Any) -> None:
    files = {"model": ("m.json", _model(100 * 1024)), "dataset_train": ("t.csv", _csv(100))}
    resp = _post(small_limits_web, make_user(), files)
    assert resp.status_code == 413, resp.text
    assert resp.json()["errors"]["model"].startswith(
        "100.0 KiB is over the 64 KiB limit (NNT_MAX_MODEL_BYTES)"
    )


def test_it_answers_413_to_a_refused_file_even_when_other_fields_are_missing(
    small_limits_web: Any, make_user: Any
) -> None:
    resp = requests.post(
        f"{small_limits_web.url}/api/experiments",
        files={"dataset_train": ("t.csv", _csv(2 * MIB))},  # no config, no model
        headers={"Authorization": f"Bearer {_token(make_user())}"},
        timeout=60,
    )
    assert resp.status_code == 413, resp.text
    assert "NNT_MAX_UPLOAD_BYTES" in resp.json()["errors"]["dataset_train"]


def _raw_exchange(url: str, head: str) -> bytes:
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head.encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_it_refuses_a_body_over_the_cap_before_the_client_sends_it(
    small_limits_web: Any,
) -> None:
    cap = 2 * MIB + 16 * MIB + MIB  # the files, plus the form fields and the framing
    head = (
        "POST /api/experiments HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {cap + 1}\r\nExpect: 100-continue\r\n\r\n"
    )
    answer = _raw_exchange(small_limits_web.url, head)  # the body is never sent
    status, _, body = answer.partition(b"\r\n\r\n")
    assert status.startswith(b"HTTP/1.1 413"), answer[:300]
    detail = json.loads(body)["detail"]
    assert "over the 19 MiB a submission may send (NNT_MAX_EXPERIMENT_UPLOAD_BYTES" in detail


def test_it_refuses_a_body_over_the_cap_of_an_address_without_uploads(
    small_limits_web: Any,
) -> None:
    resp = requests.post(
        f"{small_limits_web.url}/api/tokens",
        data=b"{" + b" " * (18 * MIB) + b"}",
        headers={"Content-Type": "application/json"},
        timeout=60,
    )
    assert resp.status_code == 413, resp.text
    assert "over the 17 MiB this address accepts" in resp.json()["detail"]


@override_settings(NNT_MAX_UPLOAD_BYTES=MIB, NNT_MAX_MODEL_BYTES=64 * 1024)
def test_the_form_shows_the_limit_beside_the_field_with_413(
    django_ready: Path, make_user: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    browser = Client()
    browser.force_login(make_user())
    before = _stored(django_ready)
    resp = browser.post(
        "/experiments/new/",
        {
            "mode": "json",
            "config_json": _config(),
            "model": SimpleUploadedFile("m.json", _model(80 * 1024)),
            "dataset_train_file": SimpleUploadedFile("train.csv", _csv(MIB * 3 // 2)),
        },
    )
    assert resp.status_code == 413
    page = resp.content.decode()
    row = page[page.index('name="dataset_train_file"') :].split("</div>", 2)[0]
    assert "1.5 MiB is over the 1 MiB limit (NNT_MAX_UPLOAD_BYTES)" in row, row
    assert "80.0 KiB is over the 64 KiB limit (NNT_MAX_MODEL_BYTES)" in page
    assert _stored(django_ready) == before


def test_a_big_model_within_its_limit_reaches_kafka_whole(
    client: Any, make_user: Any, command_log: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    model = _model(2 * MIB)  # the tester's 1 MB model was a 500; the limit is 3 MiB
    resp = client.post(
        "/api/experiments",
        {
            "config": _config(),
            "model": SimpleUploadedFile("model.json", model),
            "dataset_train": SimpleUploadedFile("train.csv", _csv(1000)),
        },
        HTTP_AUTHORIZATION=f"Bearer {_token(make_user())}",
    )
    assert resp.status_code == 201, resp.content[:500]
    sent = command_log.for_key(resp.json()["experiment_id"], expect=1)
    assert sent and sent[0].experiment["model"] == json.loads(model)


@override_settings(NNT_MAX_MODEL_BYTES=4 * MIB)
def test_a_model_too_big_for_one_kafka_message_is_413_never_500(
    client: Any, make_user: Any
) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from web.simulations.models import Simulation

    user = make_user()
    resp = client.post(
        "/api/experiments",
        {
            "config": _config(),
            "model": SimpleUploadedFile("model.json", _model(4 * MIB - 1024)),
            "dataset_train": SimpleUploadedFile("train.csv", _csv(1000)),
        },
        HTTP_AUTHORIZATION=f"Bearer {_token(user)}",
    )
    assert resp.status_code == 413, resp.content[:500]
    assert "message limit; make the model smaller" in resp.json()["errors"]["model"]
    assert not Simulation.objects.filter(owner=user).exists()


def test_uploads_and_their_temp_files_stay_in_private_folders(django_ready: Path) -> None:
    from django.conf import settings

    from web.simulations import storage

    storage.store([b"a,label\n1,0\n"], ".csv", settings.DATASETS_DIR)
    for folder in (settings.DATASETS_DIR, Path(settings.FILE_UPLOAD_TEMP_DIR)):
        assert folder.is_relative_to(django_ready)
        assert folder.stat().st_mode & 0o777 == 0o700, folder
    assert (django_ready / "secret_key").stat().st_mode & 0o777 == 0o600


def test_a_refused_file_cannot_be_read_by_mistake() -> None:
    from web.errors import TooLarge
    from web.simulations.uploads import RefusedUpload

    field = "dataset_train"
    upload = RefusedUpload(field, "f.csv", 5 * MIB, "5.0 MiB is over the limit")
    assert upload and upload.size == 5 * MIB
    with pytest.raises(TooLarge) as caught:
        b"".join(upload.chunks())
    assert caught.value.status == 413 and caught.value.errors == {field: upload.message}


def _holds(user: Any, content: bytes) -> Path:
    """`content` in the store, used by a run of `user` (recorded as an orchestrator does)."""
    from django.conf import settings

    from web.simulations import storage

    ref = storage.store([content], ".csv", settings.DATASETS_DIR)
    path = settings.DATASETS_DIR / ref.removeprefix("stored:")
    record_run(user.pk, {"train": str(path)})
    return path


def test_it_refuses_datasets_past_the_users_storage_limit_with_413_naming_it(
    client: Any, make_user: Any, command_log: Any
) -> None:
    from django.conf import settings
    from django.core.files.uploadedfile import SimpleUploadedFile

    from web.accounts import quotas
    from web.simulations.models import Simulation

    user = make_user()
    quotas.set_limits(user, None, None, max_storage_bytes=2000)
    held = _csv(1536)
    _holds(user, held)
    before = _stored(settings.NNT_HOME)

    def submit(dataset: bytes) -> Any:
        return client.post(
            "/api/experiments",
            {
                "config": _config(),
                "model": SimpleUploadedFile("m.json", _model()),
                "dataset_train": SimpleUploadedFile("train.csv", dataset),
            },
            HTTP_AUTHORIZATION=f"Bearer {_token(user)}",
        )

    new = _csv(1000)
    resp = submit(new)
    assert resp.status_code == 413, resp.content[:500]
    message = resp.json()["errors"]["__all__"]
    assert "over their limit of 2.0 KiB (max_storage_bytes)" in message, message
    assert f"1.5 KiB stored now plus {len(new)} B new" in message, message
    assert "delete old experiments" in message and message in resp.json()["detail"]
    assert not Simulation.objects.filter(owner=user).exists()
    assert _stored(settings.NNT_HOME) == before, "a refused upload left a file"
    again = submit(held)  # the file the user already stores takes no more room
    assert again.status_code == 201, again.content[:500]
    assert command_log.for_key(again.json()["experiment_id"], expect=1)


def test_the_form_shows_the_storage_limit_with_413(django_ready: Path, make_user: Any) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from web.accounts import quotas

    user = make_user()
    quotas.set_limits(user, None, None, max_storage_bytes=0)
    browser = Client()
    browser.force_login(user)
    resp = browser.post(
        "/experiments/new/",
        {
            "mode": "json",
            "config_json": _config(),
            "model": SimpleUploadedFile("m.json", _model()),
            "dataset_train_file": SimpleUploadedFile("train.csv", _csv(100)),
        },
    )
    assert resp.status_code == 413
    assert "over their limit of 0 B (max_storage_bytes)" in resp.content.decode()
