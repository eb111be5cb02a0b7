"""A run that fails inside the trainer, on the real stack, read in Chromium: the page says it
failed, with the reason in one line and the traceback behind a collapsed "Details" toggle,
whether it was opened after the failure or was already open when the failure arrived live.

How the run fails: the model reads 64 pixel ids per sample through an Embedding of 16 rows
(ids 0..15). Every training sample is valid, and so is every validation sample but the last,
which holds id 16. Submission and the pre-flight pass (the pre-flight fits every split's
shape and runs one batch of *training* data; it does not scan feature values against an
Embedding's size), and datasets of int16 are used as they are (only uint8 is scaled). The
run starts, trains epoch 1, and TensorFlow's gather refuses id 16 when the validation data
reaches the last batch: an InvalidArgumentError with a 4,000-character graph traceback,
raised inside `model.fit` in the trainer before any epoch is logged.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from playwright.sync_api import Browser, Page

from tests.e2e.stack import ROOT, log_in, watch

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "failing-user", "Quartz-Failing-4711"
WAITING = "Waiting for the first logged epoch"
VOCABULARY = 16  # the Embedding's rows: ids 0..15
REASON = re.compile(
    r"^epoch 1 \(validation\), layer 'intensity': input value 16 is not a valid index in "
    r"\[0, 16\) — raise the layer's input_dim"
)


def experiment(train_samples: int) -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """The configuration and the files of one submission whose run fails at epoch 1."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((64,), name="pixels"),
            keras.layers.Embedding(VOCABULARY, 8, name="intensity"),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(64, activation="relu", name="hidden"),
            keras.layers.Dense(10, name="logits"),
        ],
        name="pixel_ids",
    )
    files = {"model": ("model.json", model.to_json().encode())}
    rng = np.random.default_rng(7)
    for role, n in (("train", train_samples), ("val", 300), ("test", 300)):
        x = rng.integers(0, VOCABULARY, (n, 64)).astype(np.int16)
        if role == "val":
            x[-1, 7] = VOCABULARY  # the one id without a row, in the last validation batch
        out = io.BytesIO()
        np.savez(out, **{f"x_{role}": x, f"y_{role}": (x[:, 0] % 10).astype(np.int64)})
        files[f"dataset_{role}"] = (f"ids_{role}.npz", out.getvalue())
    config: dict[str, Any] = {
        "name": f"fails-{uuid.uuid4().hex[:6]}",
        "batch_size": 32,
        "total_epochs": 3,
        "epoch_period": 1,
        "optimizers": [{"optimizer": "Adam", "conf": {}}],
        "loss_function": [
            {"loss_function": "SparseCategoricalCrossentropy", "conf": {"from_logits": True}}
        ],
        "learning_rates": [0.001],
        "tags": ["fails"],
    }
    for role in ("train", "val", "test"):
        config[f"{role}_feature_name"], config[f"{role}_label_name"] = f"x_{role}", f"y_{role}"
    return config, files


def submit(api: requests.Session, base: str, train_samples: int) -> str:
    """POST the experiment (the pre-flight runs first); the id of its one simulation."""
    config, files = experiment(train_samples)
    resp = api.post(
        f"{base}/api/experiments", data={"config": json.dumps(config)}, files=files, timeout=400
    )
    assert resp.status_code == 201, f"submission refused: {resp.status_code} {resp.text[:800]}"
    (sid,) = resp.json()["simulations"]
    return str(sid)


def simulation(api: requests.Session, base: str, sid: str) -> dict[str, Any]:
    resp = api.get(f"{base}/api/simulations/{sid}", timeout=30)
    assert resp.ok, resp.text
    return resp.json()


def until_failed(api: requests.Session, base: str, sid: str, timeout: float) -> dict[str, Any]:
    deadline, sim = time.monotonic() + timeout, {}
    while time.monotonic() < deadline:
        sim = simulation(api, base, sid)
        if sim["status"] in ("failed", "finished", "stopped"):
            break
        time.sleep(1)
    assert sim.get("status") == "failed", f"the run did not fail: {sim}"
    return sim


def assert_reads_as_failed(page: Page) -> str:
    """The page says the run failed, the reason in one line, the traceback folded away."""
    assert page.locator("#sim-status").inner_text() == "failed"
    box = page.locator("#sim-failure")
    assert box.is_visible() and "This run failed" in box.inner_text()
    headline = page.locator("#sim-failure-reason").inner_text()
    assert "\n" not in headline and len(headline) < 300 and "Traceback" not in headline, headline
    assert REASON.match(headline), headline
    details = page.locator("#sim-failure-details")
    assert details.is_visible() and details.get_attribute("open") is None  # collapsed
    trace = page.locator("#sim-failure-text")
    assert not trace.is_visible()
    full = trace.text_content() or ""
    assert full.startswith("Traceback") and "indices[" in full and "GatherV2" in full
    body = page.locator("body").inner_text()
    assert WAITING not in body, "a failed run still says it waits for its first epoch"
    assert "No epoch was logged: the run failed before its first logged epoch." in body
    assert not page.locator("#sim-message").is_visible()  # the reason is not shown twice
    return headline


def test_a_failed_run_says_why_in_one_line_with_the_traceback_behind_details(
    api: requests.Session, base: str, browser: Browser, tmp_path: Path
) -> None:
    sid = submit(api, base, train_samples=2000)
    sim = until_failed(api, base, sid, timeout=400)
    assert REASON.match(sim["message"]) and "\n" not in sim["message"], sim["message"]
    assert sim["error"].startswith("Traceback") and "InvalidArgumentError" in sim["error"]
    assert sim["epoch"] == 0

    page = browser.new_page(viewport={"width": 1366, "height": 900})
    problems = watch(page)
    log_in(page, f"{base}/simulations/{sid}/", USER, PASSWORD)
    headline = assert_reads_as_failed(page)
    assert headline == sim["message"]
    page.screenshot(path=str(tmp_path / "failed-run.png"), full_page=False)
    page.locator("#sim-failure-details summary").click()
    assert page.locator("#sim-failure-text").is_visible()
    page.screenshot(path=str(tmp_path / "failed-run-details.png"), full_page=False)

    page.goto(f"{base}/simulations/")
    row = page.locator(f'#simulations tr[data-simulation-id="{sid}"]')
    reason = row.locator('[data-role="reason"]')
    assert reason.is_visible() and reason.get_attribute("title") == sim["message"]
    assert "Traceback" not in row.inner_text()
    page.screenshot(path=str(tmp_path / "failed-run-list.png"), full_page=False)
    export = api.get(f"{base}/api/simulations/{sid}/export", timeout=120)
    error_txt = zipfile.ZipFile(io.BytesIO(export.content)).read("error.txt").decode()
    assert error_txt.startswith(sim["message"] + "\n\nTraceback")
    page.close()
    assert problems == [], problems
    print(f"screenshots: {tmp_path}")


def test_a_page_open_before_the_failure_shows_it_when_it_arrives(
    api: requests.Session, base: str, browser: Browser, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    problems = watch(page)
    log_in(page, f"{base}/simulations/", USER, PASSWORD)
    # A long first epoch (60,000 samples) keeps the run going while the page opens.
    sid = submit(api, base, train_samples=60_000)
    page.goto(f"{base}/simulations/{sid}/")
    page.wait_for_function(
        "document.getElementById('live-conn').textContent === 'live'", timeout=60_000
    )
    page.evaluate("window.nntOpenedOnce = true")  # gone if anything reloaded the page
    opened_as = page.locator("#sim-status").inner_text()
    assert opened_as != "failed", "the run failed before the page was open: lengthen epoch 1"
    assert WAITING in page.locator("#chart-empty").inner_text()
    assert not page.locator("#sim-failure").is_visible()

    page.wait_for_function(
        "document.getElementById('sim-status').textContent === 'failed'", timeout=400_000
    )
    assert page.evaluate("window.nntOpenedOnce === true"), "the page was reloaded"
    assert page.evaluate("window.nntLive.frames") > 0
    headline = assert_reads_as_failed(page)
    page.screenshot(path=str(tmp_path / "failed-live.png"), full_page=False)
    assert headline == simulation(api, base, sid)["message"]
    page.close()
    assert problems == [], problems
    print(f"opened as {opened_as!r}; screenshots: {tmp_path}")
