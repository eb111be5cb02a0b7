"""A run's charts in a real browser on the real server: a log y-axis with readable ticks,
smoothing that draws a smoothed line over the faint raw one, a zoom that survives a live point
(pushed through nnt.live and the web's bridge), steps and wall time on x, the run's resources,
and a tag group's band drawn only where two runs reached."""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from django.db import connection
from playwright.sync_api import Page, sync_playwright

from schemas import topics
from tests.e2e.stack import ROOT, launch_chromium, log_in
from tests.integration.web.conftest import LiveWeb, serving

pytestmark = [pytest.mark.e2e]
PASSWORD = "pw-long-enough-1"  # make_user's
ARTIFACTS = ROOT / "test-artifacts"
T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
EPOCHS = 60
EPOCH_S = 30.0  # each epoch takes 30 s: 64 samples/s x 30 s = 1920 samples, 60 batches of 32
STEPS = 60
CHART = "document.getElementById('chart-metrics')"
LOSS = f"{CHART}.data.find(t => t.name === 'loss' && !(t.meta && t.meta.smoothed))"
SMOOTH = f"{CHART}.data.find(t => t.name === 'loss' && t.meta && t.meta.smoothed)"


def loss_at(epoch: int) -> float:
    """A noisy, decaying loss (deterministic): what smoothing is for."""
    return 2.0 * math.exp(-epoch / 12) + 0.02 + 0.08 * math.sin(epoch * 2.7) ** 2


@dataclass
class Runs:
    """Ada's long run (metrics, resources with GPU), two shorter ones of its tag, a run with
    nothing sampled, and Bob, who owns none of them."""

    ada: Any
    main: Any
    bare: Any
    tag: str


def _epochs(sim: Any, last: int, scale: float = 1.0) -> None:
    rows = []
    for e in range(1, last + 1):
        at = T0 + timedelta(seconds=e * EPOCH_S)
        values = {
            "loss": loss_at(e) * scale,
            "val_loss": loss_at(e) * scale * 1.1 + 0.03,
            "accuracy": 1 - loss_at(e) / 2.2,
            "val_accuracy": 1 - loss_at(e) / 2.0,
            "epoch_time_s": EPOCH_S,
            "samples_per_s": 64.0,
        }
        rows += [(sim.id, e, name, value, at) for name, value in values.items()]
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", rows)


def _resources(sim: Any, samples: int) -> None:
    gib = 1024**3
    rows = [
        (sim.id, T0 + timedelta(seconds=5 * i), 180 + 40 * math.sin(i / 9), int(gib * (1.5 + i / samples)),
         8 * gib, 70 + 25 * math.sin(i / 7), int(gib * (3 + math.sin(i / 20))))
        for i in range(samples)
    ]  # fmt: skip
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_resource VALUES (%s, %s, %s, %s, %s, %s, %s)", rows)


@pytest.fixture()
def runs(make_user: Any) -> Runs:
    from web.simulations.models import Simulation

    ada = make_user()
    tag = f"band-{uuid.uuid4().hex[:6]}"

    def run(name: str, epochs: int, **extra: Any) -> Any:
        return Simulation.objects.create(
            owner=ada, owner_name=ada.get_username(), name=name, status="running",
            epoch=epochs, total_epochs=80, started_at=T0, config={"batch_size": 32}, **extra,
        )  # fmt: skip

    main = run("charts · Adam · lr 0.01", EPOCHS, tags=[tag])
    _epochs(main, EPOCHS)
    _resources(main, 400)
    for name, last, scale in (("charts · SGD", 40, 1.3), ("charts · RMSprop", 20, 0.8)):
        _epochs(run(name, last, tags=[tag]), last, scale)
    bare = run("charts · nothing sampled", 0)
    return Runs(ada, main, bare, tag)


@pytest.fixture(scope="module")
def bridged_web(
    django_ready: Path, web_db_url: str, kafka_bootstrap: str, tmp_path_factory: Any
) -> Iterator[LiveWeb]:
    """The web server with its nnt.live bridge on: what reaches nnt.live reaches the page."""
    log = tmp_path_factory.mktemp("chart-web") / "web.log"
    with serving(django_ready, web_db_url, kafka_bootstrap, log, NNT_LIVE_BRIDGE="true") as web:
        yield web


@pytest.fixture()
def page(runs: Runs) -> Iterator[Page]:
    """A fresh browser (no remembered chart settings), wide enough for the charts; started
    after the runs are stored (Playwright's loop would stop the ORM in this thread)."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser.new_page(viewport={"width": 1366, "height": 1000})
        browser.close()


def _open(page: Page, web: LiveWeb, runs: Runs, sim: Any | None = None) -> None:
    url = f"{web.url}/simulations/{(sim or runs.main).id}/"
    log_in(page, url, runs.ada.get_username(), PASSWORD)
    page.wait_for_function(f"{CHART}.data && {CHART}.data.length > 0", timeout=30_000)


def _shot(page: Page, name: str, selector: str | None = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    path = str(ARTIFACTS / f"charts-{name}.png")
    if selector:
        page.locator(selector).screenshot(path=path)
    else:
        page.screenshot(path=path, full_page=True)


def test_it_draws_a_log_y_axis_with_readable_ticks(
    live_web: LiveWeb, runs: Runs, page: Page
) -> None:
    _open(page, live_web, runs)
    assert page.evaluate(f"{CHART}.layout.yaxis.type") == "linear"
    page.check("#log-loss")
    page.wait_for_function(f"{CHART}.layout.yaxis.type === 'log'")
    page.wait_for_function(f"({CHART}.layout.yaxis.tickvals || []).length >= 3")
    axis = page.evaluate(
        f"(({{type, tickvals, ticktext}}) => ({{type, tickvals, ticktext}}))({CHART}.layout.yaxis)"
    )
    assert page.evaluate(f"{CHART}.layout.yaxis2.type") == "linear", "only the loss panel"
    # every label is a whole number for its tick (no "2 5 2 5" fragments of Plotly's D2 ticks)
    for value, text in zip(axis["tickvals"], axis["ticktext"], strict=True):
        assert math.isclose(float(text), value, rel_tol=1e-3), (text, value)
    assert page.evaluate("NNTChart.logTicks(0.0004, 3).ticktext") == ["0.001", "0.01", "0.1", "1"]
    _shot(page, "log", "#panel-general .chart-panel")

    page.reload()  # remembered: the page opens in log scale again
    page.wait_for_function(f"{CHART}.layout && {CHART}.layout.yaxis.type === 'log'")
    assert page.is_checked("#log-loss")


def test_it_smooths_with_the_raw_line_faint_behind(
    live_web: LiveWeb, runs: Runs, page: Page
) -> None:
    _open(page, live_web, runs)
    assert page.evaluate(f"{SMOOTH} === undefined"), "no smoothing by default"
    page.evaluate(
        "(() => { const s = document.getElementById('chart-smoothing'); s.value = '0.8';"
        " s.dispatchEvent(new Event('input', {bubbles: true})); })()"
    )
    page.wait_for_function(f"{SMOOTH} !== undefined")
    raw, smooth = page.evaluate(f"[{LOSS}.y.slice(), {SMOOTH}.y.slice()]")
    assert len(raw) == len(smooth) == EPOCHS
    assert raw != smooth and max(smooth) - min(smooth) < max(raw) - min(raw)
    assert abs(smooth[0] - raw[0]) < 1e-9, "debiased: the first point is the first value"
    assert page.evaluate(f"{LOSS}.showlegend") is False, "the raw line has no legend entry"
    expected = page.evaluate(f"NNTChart.ema({LOSS}.y, 0.8)")
    assert smooth == pytest.approx(expected)
    assert page.locator("#chart-metrics").get_attribute("data-points") == str(EPOCHS * 4)
    _shot(page, "smoothed", "#panel-general .chart-panel")
    box = page.locator("#chart-metrics .nsewdrag").first.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.5)
    page.wait_for_selector("#chart-metrics .hoverlayer .legend")
    _shot(page, "hover", "#panel-general .chart-panel")
    _shot(page, "page")


def _publish(producer: Producer, sim: Any, epoch: int) -> None:
    at = (T0 + timedelta(seconds=epoch * EPOCH_S)).isoformat()
    point = {"epoch": epoch, "values": {"loss": 0.05, "val_loss": 0.09}, "at": at}
    update = {"kind": "epochs", "simulation_id": str(sim.id), "points": [point]}
    producer.produce(topics.LIVE, json.dumps(update).encode(), key=str(sim.id).encode())
    producer.flush(10)


def test_it_keeps_a_zoom_across_a_live_update_and_fits_y_to_it(
    bridged_web: LiveWeb, kafka_bootstrap: str, runs: Runs, page: Page
) -> None:
    _open(page, bridged_web, runs)
    page.wait_for_function("document.getElementById('live-conn').textContent === 'live'")
    full = page.evaluate(f"{CHART}.layout.yaxis.range.slice()")
    page.evaluate(f"Plotly.relayout({CHART}, {{'xaxis.range': [30, 50]}})")
    page.wait_for_function(f"{CHART}.layout.yaxis.autorange === false")
    fitted = page.evaluate(f"{CHART}.layout.yaxis.range.slice()")
    shown = [loss_at(e) * k for e in range(30, 51) for k in (1.0, 1.1)]
    assert fitted[1] - fitted[0] < (full[1] - full[0]) / 3, "y fits the zoomed epochs"
    assert fitted[0] <= min(shown) and fitted[1] >= max(shown)

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(120):  # the bridge reads from the latest offset once it has its partitions
        _publish(producer, runs.main, EPOCHS + 1)
        try:
            page.wait_for_function(f"{LOSS}.x.includes({EPOCHS + 1})", timeout=1000)
            break
        except Exception:  # noqa: BLE001 - not there yet: publish again
            continue
    assert page.evaluate(f"{LOSS}.x.at(-1)") == EPOCHS + 1, "the live point reached the chart"
    assert page.evaluate(f"{CHART}.layout.xaxis.range.slice()") == [30, 50], "the zoom survived"
    _shot(page, "zoomed-live", "#panel-general .chart-panel")

    page.locator("#chart-metrics .nsewdrag").first.dblclick(position={"x": 200, "y": 60})
    page.wait_for_function(f"{CHART}.layout.xaxis.autorange === true")


def test_it_shows_the_test_metrics_when_the_run_finishes_while_open(
    bridged_web: LiveWeb, web_db_url: str, kafka_bootstrap: str, runs: Runs, page: Page
) -> None:
    import psycopg

    _open(page, bridged_web, runs)
    page.wait_for_function("document.getElementById('live-conn').textContent === 'live'")
    panel = page.locator("#test-metrics")
    assert "Shown when the run finishes" in panel.inner_text()
    message = "test: accuracy=0.9132, loss=0.2871"
    with psycopg.connect(web_db_url, autocommit=True) as conn:  # what the projection writes
        conn.execute(
            "UPDATE nnt_simulation SET status = 'finished', message = %s WHERE id = %s",
            (message, runs.main.id),
        )
    update = {"kind": "status", "simulation_id": str(runs.main.id),
              "status": {"status": "finished", "epoch": EPOCHS, "total_epochs": 80, "message": message}}  # fmt: skip
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for _ in range(120):  # the bridge reads from the latest offset once it has its partitions
        producer.produce(topics.LIVE, json.dumps(update).encode(), key=str(runs.main.id).encode())
        producer.flush(10)
        try:
            page.wait_for_function(
                "document.querySelectorAll('#test-metrics .stat').length === 2", timeout=1000
            )
            break
        except Exception:  # noqa: BLE001 - not there yet: publish again
            continue
    cards = page.locator("#test-metrics .stat").all_inner_texts()
    shown = [c.lower().split() for c in cards]  # labels are upper case by CSS
    assert shown == [["accuracy", "0.9132"], ["loss", "0.2871"]], cards
    assert "Shown when the run finishes" not in panel.inner_text()


def test_it_draws_steps_and_wall_time_on_x(live_web: LiveWeb, runs: Runs, page: Page) -> None:
    _open(page, live_web, runs)
    page.select_option("#chart-xaxis", "step")
    page.wait_for_function(f"{CHART}.layout.xaxis.title.text.startsWith('step')")
    assert page.evaluate(f"{LOSS}.x.slice(0, 2)") == [STEPS, 2 * STEPS]
    page.select_option("#chart-xaxis", "time")
    page.wait_for_function(f"{CHART}.layout.xaxis.title.text.startsWith('wall time')")
    assert "min since start" in page.evaluate(f"{CHART}.layout.xaxis.title.text")
    assert page.evaluate(f"{LOSS}.x.slice(0, 2)") == [0.5, 1.0], "30 s epochs, in minutes"
    _shot(page, "wall-time", "#panel-general .chart-panel")


def test_it_shows_the_runs_resources_and_gpu_only_when_sampled(
    live_web: LiveWeb, runs: Runs, page: Page
) -> None:
    _open(page, live_web, runs)
    page.click("#resources-panel summary")
    page.wait_for_function("window.nntResources.reads > 0")
    page.wait_for_function("document.getElementById('res-gpu').data !== undefined")
    assert page.evaluate("window.nntResources.samples") == 400
    assert page.is_visible("#res-gpu-box") and page.is_visible("#res-gpu-memory-box")
    cpu = page.evaluate("document.getElementById('res-cpu').data[0].y.length")
    assert 2 <= cpu <= 400
    assert page.evaluate("document.getElementById('res-memory').layout.yaxis.title.text") == "GiB"
    _shot(page, "resources", "#resources-panel")

    page.goto(f"{live_web.url}/simulations/{runs.bare.id}/")  # remembered open
    page.wait_for_function("window.nntResources.reads > 0")
    assert page.is_visible("#resources-empty")
    assert "No resource samples yet" in page.inner_text("#resources-empty")
    assert not page.is_visible("#res-gpu-box")


def test_it_bands_a_tag_group_only_where_two_runs_reached(
    live_web: LiveWeb, runs: Runs, page: Page
) -> None:
    _open(page, live_web, runs)
    page.click("#tab-comparisons")
    page.wait_for_function(
        "(document.getElementById('agg-chart').data || []).length > 2", timeout=30_000
    )
    agg = "document.getElementById('agg-chart')"
    page.select_option("#agg-metric", "loss")
    page.wait_for_function(f"{agg}.data.some(t => t.name.startsWith('min–max'))")
    band = page.evaluate(f"{agg}.data.find(t => t.name.startsWith('min–max')).x.slice()")
    assert band == list(range(1, 41)), "the band stops where only one run is left"
    mean = page.evaluate(f"{agg}.data.find(t => t.name.startsWith('mean of'))")
    assert mean["x"] == list(range(1, 41)) and "of 3 runs" in mean["hovertemplate"]
    assert mean["customdata"][0] == 3 and mean["customdata"][-1] == 2, "runs behind each point"
    alone = page.evaluate(f"{agg}.data.find(t => t.name.startsWith('a single run'))")
    assert alone["x"] == list(range(40, EPOCHS + 1)) and alone["customdata"][1:] == [1] * 20
    assert page.is_visible("#chart-controls") and not page.is_visible("#diff-chart")
    page.select_option("#agg-band", "std")
    page.wait_for_function(f"{agg}.data.some(t => t.name.startsWith('mean ± 1 std'))")
    _shot(page, "tag-band", "#panel-comparisons")
