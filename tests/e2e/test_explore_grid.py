"""Exploring a real 2×2×2 grid in Chromium, on the real stack (`nntracker up`: Kafka, the
stream workers, TimescaleDB or PostgreSQL, the orchestrator and its trainers): sort the runs
table by best validation accuracy, overlay three runs, open the parallel-coordinates view and
click through to a run, toggle smoothing and log scale on its charts, and download the summary
export, which pandas and NumPy read. Screenshots of each step: test-artifacts/explore-*.png."""

from __future__ import annotations

import io
import json
import math
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import requests
from playwright.sync_api import Browser, Page

from tests import polling
from tests.e2e.stack import ROOT, log_in

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "explorer", "Quartz-Explorer-4711"
EPOCHS = 4
SUMMARY_CAP = 2_000_000  # bytes: the summary of a small run is kB, never the full tensors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"explore-{name}.png"), full_page=True)


def _config() -> tuple[dict[str, Any], dict[str, tuple[str, bytes]]]:
    """The demo's data and model in a 2 optimizers × 2 losses × 2 learning rates grid."""
    from trainer.demo import write_demo

    with tempfile.TemporaryDirectory() as tmp:
        config, model, paths = write_demo(Path(tmp), total_epochs=EPOCHS)
        files = {"model": ("model.json", json.dumps(model).encode())}
        for role, path in paths.items():
            files[f"dataset_{role}"] = (Path(path).name, Path(path).read_bytes())
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    logits = {"from_logits": True}
    config.update(
        name="explore",
        epoch_period=1,
        optimizers=[{"optimizer": "Adam", "conf": {}}, {"optimizer": "SGD", "conf": {}}],
        loss_function=[
            {"loss_function": "SparseCategoricalCrossentropy", "conf": logits},
            {"loss_function": "CategoricalCrossentropy", "conf": logits},
        ],
        learning_rates=[0.01, 0.001],
        tags=["explore"],
    )
    return config, files


@pytest.fixture(scope="module")
def grid(api: requests.Session, base: str) -> dict[str, Any]:
    """The grid, submitted over the API and trained to the end: its experiment and runs."""
    config, files = _config()
    resp = api.post(
        f"{base}/api/experiments", data={"config": json.dumps(config)}, files=files, timeout=400
    )
    assert resp.status_code == 201, f"submission refused: {resp.status_code} {resp.text[:800]}"
    experiment = resp.json()["experiment_id"]
    assert len(resp.json()["simulations"]) == 8

    def ended() -> list[dict[str, Any]] | None:
        runs = api.get(
            f"{base}/api/simulations", params={"experiment": experiment}, timeout=30
        ).json()
        done = all(r["status"] in ("finished", "failed", "stopped") for r in runs)
        return runs if done and len(runs) == 8 else None

    runs = polling.until(ended, 900, "the 8 runs of the grid to end", interval=3)
    assert all(r["status"] == "finished" for r in runs), [(r["name"], r["status"]) for r in runs]
    return {"experiment": experiment, "runs": runs}


@pytest.fixture(scope="module")
def page(browser: Browser, base: str, grid: dict[str, Any]) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True)
    tab = context.new_page()
    problems: list[str] = []
    tab.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
    log_in(tab, f"{base}/simulations/?experiment={grid['experiment']}", USER, PASSWORD)
    yield tab
    context.close()
    assert not problems, problems


def _best(run: dict[str, Any]) -> float:
    value = (run["metrics"].get("val_accuracy") or {}).get("best")
    return -math.inf if value is None else value


def test_it_names_each_run_after_what_differs(grid: dict[str, Any]) -> None:
    names = {r["name"] for r in grid["runs"]}
    assert "explore · Adam · SparseCategoricalCrossentropy · lr 0.01" in names and len(names) == 8


def test_it_sorts_the_runs_table_by_best_validation_accuracy(
    page: Page, grid: dict[str, Any]
) -> None:
    page.wait_for_selector("#simulations tbody tr")
    header = page.locator('#simulations th[data-col="metric.val_accuracy.best"]')
    if not header.is_visible():  # a metric column the user has not chosen: choose it
        page.locator("#column-menu summary").click()
        page.locator('[data-col-toggle="metric.val_accuracy.best"]').check()
        page.locator("#column-menu summary").click()
    header.locator("a.sort").click()
    page.wait_for_url("**sort=*metric.val_accuracy.best*")
    page.wait_for_selector("#simulations tbody tr")
    shown = page.locator("#simulations tbody [data-role=name]").all_inner_texts()
    expected = [r["name"] for r in sorted(grid["runs"], key=_best, reverse=True)]
    assert shown[0] == expected[0] and sorted(shown) == sorted(expected)
    bests = [_best(next(r for r in grid["runs"] if r["name"] == n)) for n in shown]
    assert bests == sorted(bests, reverse=True), list(zip(shown, bests, strict=True))
    shot(page, "1-sorted")


def test_it_overlays_three_runs_on_the_same_charts(page: Page, grid: dict[str, Any]) -> None:
    for i in range(3):
        page.locator("#simulations tbody .row-check").nth(i).check()
    page.locator("#bulk-overlay").click()
    page.wait_for_url("**/simulations/overlay/**")
    page.wait_for_function(
        "document.querySelectorAll('.js-plotly-plot').length > 0"
        " && [...document.querySelectorAll('.js-plotly-plot')].every(p => p.data && p.data.length >= 3)",
        timeout=30_000,
    )
    lines = page.evaluate(
        "[...document.querySelectorAll('.js-plotly-plot')].map(p => p.data.filter("
        f"t => t.x && t.x.length === {EPOCHS}).length)"
    )
    assert lines and all(n == 3 for n in lines), lines
    assert page.locator("#overlay-legend button").count() == 3
    shot(page, "2-overlay")


def test_it_opens_a_run_from_the_parallel_coordinates(
    page: Page, base: str, grid: dict[str, Any]
) -> None:
    page.goto(f"{base}/simulations/grid/?experiment={grid['experiment']}")
    page.wait_for_selector("#grid-root[data-ready='1']", timeout=30_000)
    assert page.locator(".pc-run").count() == 8
    shot(page, "3-grid")
    line = page.locator(".pc-run").first
    target = line.get_attribute("data-id")
    line.dispatch_event("click")
    page.wait_for_url(f"{base}/simulations/{target}/", timeout=15_000)
    assert page.locator("h1").inner_text() in {r["name"] for r in grid["runs"]}


def test_it_smooths_and_draws_log_scale_on_the_run_page(page: Page) -> None:
    chart = "document.getElementById('chart-metrics')"
    page.wait_for_function(f"{chart}.data && {chart}.data.length > 0", timeout=30_000)
    page.evaluate(
        "(() => { const s = document.getElementById('chart-smoothing'); s.value = '0.6';"
        " s.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    page.wait_for_function(f"{chart}.data.some(t => t.meta && t.meta.smoothed)", timeout=10_000)
    page.check("#log-loss")
    page.wait_for_function(f"{chart}.layout.yaxis.type === 'log'", timeout=10_000)
    shot(page, "4-smoothed-log")


def test_it_downloads_a_small_summary_that_pandas_and_numpy_read(
    page: Page, tmp_path: Path
) -> None:
    page.click("[role=tab][data-tab=download]")
    page.wait_for_function(
        "document.getElementById('download-button').textContent.includes('≈')", timeout=30_000
    )
    shot(page, "5-download")
    with page.expect_download(timeout=60_000) as info:
        page.click("#download-button")
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(str(path))
    assert 0 < path.stat().st_size < SUMMARY_CAP
    with zipfile.ZipFile(path) as zf:
        names = set(zf.namelist())
        assert {"config.json", "epochs.csv", "tensor_stats.csv"} <= names
        assert not any(n.endswith(("kernels.csv", "kernels.npz")) for n in names)
        epochs = pd.read_csv(io.BytesIO(zf.read("epochs.csv")))
        stats = pd.read_csv(io.BytesIO(zf.read("tensor_stats.csv")))
        arrays = [n for n in names if n.endswith(".npz")]
        for name in arrays:
            with np.load(io.BytesIO(zf.read(name))) as npz:
                assert npz.files
    assert list(epochs["epoch"]) == list(range(1, EPOCHS + 1))
    assert {"loss", "val_accuracy"} <= set(epochs.columns)
    assert len(stats) > 0 and {"layer_name", "epoch", "mean"} <= set(stats.columns)
