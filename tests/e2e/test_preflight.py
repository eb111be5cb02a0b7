"""Pre-flight at submit on the real stack: each mistake is a 422 naming the field and the fix,
in the API, the CLI and the form, and nothing is created."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from playwright.sync_api import sync_playwright

from tests.e2e.stack import ROOT, UpProcess, launch_chromium, log_in

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "preflight-user", "Quartz-Preflight-4711"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, dict[str, Path]]:
    from trainer.demo import write_demo

    folder = tmp_path_factory.mktemp("preflight-demo")
    config, model, paths = write_demo(folder, total_epochs=2)
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    (folder / "model.json").write_text(json.dumps(model))
    return config, folder / "model.json", {role: Path(p) for role, p in paths.items()}


def submit(api: requests.Session, base: str, demo: tuple, **changes: Any) -> requests.Response:
    config, model, data = demo
    files: dict[str, Any] = {"model": ("model.json", model.read_bytes())}
    files |= {f"dataset_{role}": (p.name, p.read_bytes()) for role, p in data.items()}
    if "dataset_train" in changes:
        files["dataset_train"] = ("train.npz", changes.pop("dataset_train"))
    body = {"config": json.dumps({**config, "name": f"pf-{uuid.uuid4().hex[:6]}", **changes})}
    return api.post(f"{base}/api/experiments", data=body, files=files, timeout=400)


def simulation_names(api: requests.Session, base: str) -> list[str]:
    return [s["name"] for s in api.get(f"{base}/api/simulations?limit=500").json()]


LOGITS = {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": True}}


def test_it_refuses_each_mistake_with_its_field_and_creates_nothing(
    api: requests.Session, base: str, demo: tuple
) -> None:
    before = simulation_names(api, base)
    typo = submit(
        api, base, demo,
        loss_function=[{"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logit": True}}],
    )  # fmt: skip
    assert typo.status_code == 422, typo.text
    assert typo.json()["errors"] == {
        "loss_functions.0.conf.from_logit": "unknown option 'from_logit' for "
        "SparseCategoricalCrossentropy; did you mean 'from_logits'?"
    }
    momentum = submit(api, base, demo, optimizers=[{"optimizer": "SGD", "conf": {"momentun": 0.9}}])
    assert momentum.status_code == 422
    assert "did you mean 'momentum'?" in momentum.json()["errors"]["optimizers.0.conf.momentun"]

    config, _, data = demo
    with np.load(data["train"]) as arrays:
        x, y = arrays["x_train"], arrays["y_train"]
    for bad, expected in ((x[:, :6, :6], "model's input expects (8, 8)"), (x, "outside 0..9")):
        out = io.BytesIO()
        np.savez(out, x_train=bad, y_train=y if bad is not x else y + 3)
        shape = submit(api, base, demo, dataset_train=out.getvalue())
        assert shape.status_code == 422, shape.text
        assert expected in shape.json()["errors"]["dataset_train"]
    assert simulation_names(api, base) == before, "a refused experiment left runs behind"


def test_it_adapts_sparse_labels_for_one_hot_metrics_and_says_so(
    api: requests.Session, base: str, demo: tuple
) -> None:
    metrics = [{"metric": "KLDivergence"}, {"metric": "LogCoshError"}]
    created = submit(api, base, demo, loss_function=[LOGITS], extra_metrics=metrics)
    assert created.status_code == 201, created.text
    notes = created.json()["notes"]
    assert any(n.startswith("extra_metrics[0] (KLDivergence)") for n in notes), notes
    assert any(n.startswith("extra_metrics[1] (LogCoshError)") for n in notes), notes


def test_the_cli_prints_the_field_and_the_fix(stack: UpProcess, base: str, demo: tuple) -> None:
    config, model, data = demo
    folder = model.parent
    bad = {**config, "name": "pf-cli", "loss_function": [
        {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logit": True}}]}  # fmt: skip
    (folder / "bad.json").write_text(json.dumps(bad))
    token = requests.post(
        f"{base}/api/tokens", json={"username": USER, "password": PASSWORD}, timeout=30
    ).json()["token"]
    env = {**stack.env, "NNT_TOKEN": token, "NNT_URL": base}
    done = subprocess.run(  # noqa: S603 - our own CLI
        [sys.executable, "-m", "client", "submit", str(folder / "bad.json"), "--model", str(model),
         "--train", str(data["train"])],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=400,
    )  # fmt: skip
    assert done.returncode != 0
    said = done.stdout + done.stderr
    assert "loss_functions.0.conf.from_logit" in said and "did you mean 'from_logits'?" in said
    assert "Traceback" not in said


def test_the_form_shows_the_error_next_to_the_loss_row(base: str, demo: tuple) -> None:
    config, model, data = demo
    bad = {**config, "name": "pf-form", "loss_function": [
        {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logit": True}}]}  # fmt: skip
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        log_in(page, f"{base}/experiments/new/", USER, PASSWORD)
        page.check("input[name=mode][value=json]")
        page.fill("#id_config_json", json.dumps(bad, indent=2))
        page.set_input_files("#id_model", str(model))
        page.set_input_files("input[name=dataset_train_file]", str(data["train"]))
        page.click("#experiment-form button[type=submit]")
        page.wait_for_selector("#form-errors", timeout=400_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "preflight-form.png"), full_page=True)
        text = page.content()
        browser.close()
    assert "did you mean &#x27;from_logits&#x27;?" in text or "did you mean 'from_logits'?" in text
