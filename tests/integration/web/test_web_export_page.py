"""The run page's Download tab in a real browser on the real server: each button shows its
size before the click, the files it downloads open, a full export above 500 MB asks first,
and the trained model's link shows only once the run kept one."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection
from playwright.sync_api import Page, sync_playwright

from schemas.tensors import encode_array, split
from tests.e2e.stack import launch_chromium, log_in
from tests.integration.web.conftest import LiveWeb

pytestmark = [pytest.mark.e2e]
PASSWORD = "pw-long-enough-1"  # make_user's
T0 = datetime(2025, 5, 1, tzinfo=UTC)
INSERT = """INSERT INTO nnt_tensor (simulation_id, layer_index, layer_name, kind, variable,
    epoch, chunk, chunks, dtype, shape, compression, data, stats, at)
    VALUES (%s, 1, 'dense', %s, %s, %s, 0, 1, 'float32', %s, 'zstd', %s, %s, %s)"""


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    defaults = {"name": "page run", "owner_name": owner.get_username(), "total_epochs": 3}
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _kernel(epoch: int) -> np.ndarray:
    return np.random.default_rng(epoch).normal(size=(32, 16)).astype(np.float32)


def _record(sim: Any) -> None:
    rows = []
    for e in (1, 2, 3):
        k = _kernel(e)
        stats = {"mean": float(k.mean()), "hist_counts": [512], "hist_edges": [-4.0, 4.0]}
        [data] = split(encode_array(k), 1 << 20)
        rows.append((sim.id, "kernel", "m/dense/kernel", e, [32, 16], data, json.dumps(stats), T0))
    with connection.cursor() as cur:
        cur.executemany(INSERT, rows)
        cur.execute(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, 1, 'loss', 0.5, %s)",
            [sim.id, T0],
        )


@dataclass
class Runs:
    """A finished run with values and a kept model; a running one with an 800 MB kernel."""

    user: Any
    finished: Any
    running: Any


@pytest.fixture()
def runs(live_web: LiveWeb, make_user: Any) -> Runs:
    user = make_user()
    finished = _sim(user, status="finished", epoch=3)
    _record(finished)
    final = live_web.home / "runs" / str(finished.id) / "checkpoints" / "epoch-000003"
    final.mkdir(parents=True)
    (final / "model.keras").write_bytes(b"PK a keras file")
    (final.parent / "latest.json").write_text(json.dumps({"epoch": 3, "path": final.name}))
    running = _sim(user, status="running", epoch=1)
    with connection.cursor() as cur:  # a 20000 x 10000 kernel: 800 MB in float32
        cur.execute(
            INSERT, [running.id, "kernel", "m/dense/kernel", 1, [20000, 10000], b"x", "{}", T0]
        )
    return Runs(user, finished, running)


@pytest.fixture()
def page(runs: Runs) -> Iterator[Page]:
    """A browser started after the runs are stored (Playwright's loop would stop the ORM in
    this thread)."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser.new_page(viewport={"width": 1366, "height": 900}, accept_downloads=True)
        browser.close()


def _open_tab(page: Page, web: LiveWeb, user: Any, sim: Any) -> None:
    log_in(page, f"{web.url}/simulations/{sim.id}/", user.get_username(), PASSWORD)
    page.click("[role=tab][data-tab=download]")
    page.wait_for_function(
        "document.getElementById('download-button').textContent.includes('≈')", timeout=30_000
    )


def _download(page: Page, selector: str, tmp_path: Path) -> Path:
    with page.expect_download(timeout=60_000) as info:
        page.click(selector)
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(str(path))
    return path


def test_it_shows_sizes_and_downloads_the_summary_every_value_and_the_model(
    live_web: LiveWeb, runs: Runs, page: Page, tmp_path: Path
) -> None:
    _open_tab(page, live_web, runs.user, runs.finished)
    assert "Summary (≈" in page.inner_text("#download-button")
    assert "Full tensors (≈" in page.inner_text("#download-full")
    assert "float16 (≈" in page.inner_text("#download-full16")
    assert page.is_visible("#download-model") and "15 B" in page.inner_text("#download-model")
    with zipfile.ZipFile(_download(page, "#download-button", tmp_path)) as zf:
        assert "tensor_stats.csv" in zf.namelist() and "kernels.npz" not in zf.namelist()
    with zipfile.ZipFile(_download(page, "#download-full16", tmp_path)) as zf:
        kernels = np.load(io.BytesIO(zf.read("kernels.npz")))
    assert np.array_equal(kernels["dense.kernel"][2], _kernel(3).astype(np.float16))
    model = _download(page, "#download-model", tmp_path)
    assert model.name.endswith(".keras") and model.read_bytes() == b"PK a keras file"


def test_it_asks_before_a_full_export_over_500_mb_and_hides_a_running_runs_model(
    live_web: LiveWeb, runs: Runs, page: Page
) -> None:
    _open_tab(page, live_web, runs.user, runs.running)
    assert "800 MB" in page.inner_text("#download-full")
    assert not page.is_visible("#download-model")
    assert "kept when the run finishes" in page.inner_text("#model-note")
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", dismiss)
    downloads: list[Any] = []
    page.on("download", lambda download: downloads.append(download))
    page.click("#download-full")
    page.wait_for_timeout(1000)
    assert asked and "about 800 MB" in asked[0] and not downloads
