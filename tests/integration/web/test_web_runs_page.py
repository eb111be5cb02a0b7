"""The runs table in a real browser on the real server: sorting by a metric's header (on the
server, runs without the value last), hiding and showing a column (remembered across reloads),
a column filter, three ticked runs overlaid with one line per run on every metric's chart, and
the table scrolling sideways inside its box on a phone-sized screen. Screenshots go to
test-artifacts/runs-*.png."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from playwright.sync_api import Page, sync_playwright

from store import summaries
from tests.e2e.stack import ROOT, launch_chromium, log_in

pytestmark = [pytest.mark.e2e]
PASSWORD = "pw-long-enough-1"  # make_user's
ARTIFACTS = ROOT / "test-artifacts"
T0 = datetime(2025, 3, 1, tzinfo=UTC)
EPOCHS = 5
# optimizer, learning rate, fold, status, best val_accuracy (None: nothing logged yet)
GRID = [
    ("Adam", 0.01, 1, "finished", 0.93),
    ("Adam", 0.01, 2, "finished", 0.88),
    ("Adam", 0.1, 1, "finished", 0.81),
    ("SGD", 0.01, 1, "running", 0.74),
    ("SGD", 0.1, 1, "failed", 0.35),
    ("SGD", 0.1, 2, "queued", None),
]


@dataclass
class Sweep:
    """One user's experiment of GRID runs."""

    owner: Any
    experiment: Any
    runs: dict[str, Any]  # name -> Simulation
    best: dict[str, float]  # name -> best val_accuracy


def _name(opt: str, lr: float, fold: int) -> str:
    return f"digits-grid · {opt} · lr {lr:g} · fold {fold}"


def _metrics(sim: Any, best: float) -> None:
    """EPOCHS epochs of four metrics peaking at `best`, stored and summarised as the workers do;
    the failed run's last tensors carry a health flag."""
    curve = [best * s for s in (0.6, 0.8, 0.9, 1.0, 0.97)]
    rows = [
        (sim.id, epoch, name, value, T0)
        for epoch, acc in enumerate(curve, start=1)
        for name, value in (
            ("val_accuracy", acc),
            ("accuracy", min(1.0, acc + 0.03)),
            ("val_loss", 1.5 - acc),
            ("loss", 1.4 - acc),
        )
    ]
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute(summaries.BACKFILL_METRICS)  # a merge: the other runs' rows stay the same
        if sim.status == "failed":
            cur.execute(summaries.MERGE_FLAGS, [[sim.id], [EPOCHS], ["vanishing_gradient"]])


def _sql(statements: list[tuple[str, list[Any]]]) -> None:
    """Run statements outside the browser's event loop (Django refuses the ORM inside it)."""

    def run() -> None:
        with connection.cursor() as cur:
            for sql, params in statements:
                cur.execute(sql, params)
        connection.close()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(run).result()


@pytest.fixture()
def sweep(make_user: Any) -> Sweep:
    """Ada's six runs: four with metrics, one failed with a health flag, one queued."""
    from web.simulations.models import Experiment, Simulation

    ada = make_user()
    config = {"name": "digits-grid", "total_epochs": EPOCHS, "batch_size": 32}
    exp = Experiment.objects.create(owner=ada, name="digits-grid", config=config)
    runs, best = {}, {}
    for opt, lr, fold, status, top in GRID:
        sim = Simulation.objects.create(
            owner=ada,
            owner_name=ada.get_username(),
            experiment=exp,
            name=_name(opt, lr, fold),
            status=status,
            epoch=0 if top is None else EPOCHS - (status == "running"),
            total_epochs=EPOCHS,
            started_at=None if top is None else T0,
            finished_at=T0.replace(minute=3) if status in ("finished", "failed") else None,
            message="loss became NaN at epoch 5" if status == "failed" else "",
            tags=["sweep"],
            config={
                "optimizer": {"optimizer": opt},
                "loss": {"loss_function": "categorical_crossentropy"},
                "learning_rate": lr,
                "fold": fold,
                "folds": 2,
            },
        )
        if top is not None:
            _metrics(sim, top)
            best[sim.name] = top
        runs[sim.name] = sim
    return Sweep(ada, exp, runs, best)


@pytest.fixture()
def browser(live_web: Any) -> Iterator[Any]:
    """Chromium, closed after the test."""
    with sync_playwright() as pw:
        chromium = launch_chromium(pw)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Page:
    """A desktop-sized page."""
    return browser.new_page(viewport={"width": 1366, "height": 900})


# Keeps the page's sockets, so a test can hand the page a push as the server would send it.
KEEP_SOCKETS = """
window.__sockets = [];
const Native = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = new Native(url, protocols); window.__sockets.push(ws); return ws;
};
window.WebSocket.prototype = Native.prototype;
"""
PUSH = """msgs => msgs.forEach(m => window.__sockets.forEach(
    ws => ws.onmessage && ws.onmessage({data: JSON.stringify(m)})))"""


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"runs-{name}.png"), full_page=True)


def _names(page: Page) -> list[str]:
    """The runs' names, top to bottom."""
    return page.locator("#simulations tbody [data-role=name]").all_inner_texts()


def _open(page: Page, url: str, sweep: Sweep) -> None:
    log_in(page, url, sweep.owner.get_username(), PASSWORD)
    page.wait_for_selector("#simulations tbody tr")


def test_it_sorts_by_a_metric_header_and_remembers_the_chosen_columns(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    _open(page, f"{live_web.url}/simulations/", sweep)
    assert len(_names(page)) == len(GRID)
    header = page.locator('#simulations th[data-col="metric.val_accuracy.best"]')
    assert header.is_visible(), "the best validation accuracy is a default column"
    by_best = sorted(sweep.best, key=sweep.best.get)
    queued = _name("SGD", 0.1, 2)

    header.locator("a.sort").click()  # accuracy: higher is better, so best first
    page.wait_for_url("**sort=-metric.val_accuracy.best*")
    assert _names(page) == [*reversed(by_best), queued], "best first, the run without it last"
    assert header.get_attribute("aria-sort") == "descending"
    assert "0.93" in page.locator("#simulations tbody tr").first.inner_text()
    _shot(page, "sorted")

    page.locator('#simulations th[data-col="metric.val_accuracy.best"] a.sort').click()
    page.wait_for_url("**sort=metric.val_accuracy.best*")
    assert _names(page) == [*by_best, queued], "ascending, and still the run without it last"

    # the failed run: its reason under the status, a failing health chip naming the flag
    failed = page.locator(f'tr[data-simulation-id="{sweep.runs[_name("SGD", 0.1, 1)].id}"]')
    assert "loss became NaN" in failed.locator("[data-role=reason]").inner_text()
    assert failed.locator("[data-role=health]").inner_text() == "failing"
    assert "vanishing gradient" in (failed.locator("td[data-col=health]").get_attribute("title"))

    # hide the health column, show the last validation loss; both survive a reload
    page.locator("#column-menu summary").click()
    page.locator('[data-col-toggle="health"]').uncheck()
    page.locator('[data-col-toggle="metric.val_loss.last"]').check()
    _shot(page, "column-menu")
    health = page.locator('#simulations th[data-col="health"]')
    val_loss_last = page.locator('#simulations th[data-col="metric.val_loss.last"]')
    assert not health.is_visible() and val_loss_last.is_visible()
    page.reload()
    assert not health.is_visible() and val_loss_last.is_visible()
    assert page.locator('#simulations tbody td[data-col="health"]:visible').count() == 0
    page.locator("#table-box").evaluate("box => { box.scrollLeft = box.scrollWidth; }")
    _shot(page, "columns")
    page.locator("#column-menu summary").click()
    page.locator('[data-col-toggle="health"]').check()
    assert health.is_visible()

    # a column filter: best validation accuracy of at least 0.85
    box = page.locator('.col-filter[data-filter-col="metric.val_accuracy.best"]')
    box.fill(">= 0.85")
    box.press("Enter")
    page.wait_for_url("**filter=metric.val_accuracy.best*")
    assert set(_names(page)) == {n for n, b in sweep.best.items() if b >= 0.85}
    chips = page.locator("#filter-chips .chip")
    assert chips.count() == 1 and ">= 0.85" in chips.inner_text()
    _shot(page, "filtered")


def test_it_overlays_three_ticked_runs_with_one_line_each(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    page.add_init_script(KEEP_SOCKETS)
    _open(page, f"{live_web.url}/simulations/?sort=-metric.val_accuracy.best", sweep)
    ticked = _names(page)[:3]
    for i in range(3):
        page.locator("#simulations tbody .row-check").nth(i).check()
    overlay = page.locator("#bulk-overlay")
    assert overlay.inner_text() == "Overlay (3)"
    _shot(page, "ticked")
    overlay.click()
    page.wait_for_url("**/simulations/overlay/?ids=*")
    page.wait_for_function("window.nntOverlay && window.nntOverlay.drawn > 0", timeout=30_000)
    charts = page.evaluate(
        "[...document.querySelectorAll('.overlay-chart')].map(el => ({metric: el.dataset.metric,"
        " names: el.data.map(t => t.name), points: el.data.map(t => t.x.length)}))"
    )
    assert sorted(c["metric"] for c in charts) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    for chart in charts:
        assert chart["names"] == ticked, f"{chart['metric']}: one line per ticked run"
        assert chart["points"] == [EPOCHS, EPOCHS, EPOCHS]
    assert page.locator("#overlay-legend button").count() == 3
    _shot(page, "overlay")

    # the first run logs a sixth epoch: its lines grow, by push, on every chart
    first = sweep.runs[ticked[0]]
    insert = (
        "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
        "SELECT %s, 6, metric, value, at FROM nnt_epoch_metric "
        "WHERE simulation_id = %s AND epoch = 5"
    )
    _sql([(insert, [first.id, first.id])])
    page.wait_for_selector("#live-conn.on")
    status = {"status": "running", "epoch": 6, "total_epochs": 6}
    page.evaluate(PUSH, [{"kind": "status", "simulation_id": str(first.id), "status": status}])
    page.wait_for_function(
        "[...document.querySelectorAll('.overlay-chart')]"
        ".every(el => el.data[0].x.length === 6 && el.data[1].x.length === 5)",
        timeout=20_000,
    )


def test_it_inserts_new_runs_live_with_their_hyperparameters(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    _open(page, f"{live_web.url}/simulations/", sweep)
    page.evaluate("window.__sameDocument = true")
    page.wait_for_selector("#live-conn.on")
    base = live_web.url
    token = page.request.post(
        f"{base}/api/tokens",
        data={"username": sweep.owner.get_username(), "password": PASSWORD},
    ).json()["token"]
    config = {
        "name": "live-grid",
        "total_epochs": 3,
        "learning_rates": [0.5, 0.05],
        "dataset_train": "https://example.org/train.csv",
    }
    model = b'{"class_name": "Sequential", "config": {"name": "m", "layers": []}}'
    made = page.request.post(
        f"{base}/api/experiments",
        headers={"Authorization": f"Bearer {token}"},
        multipart={
            "config": json.dumps(config),
            "model": {"name": "model.json", "mimeType": "application/json", "buffer": model},
        },
    )
    assert made.status == 201, made.text()
    new = [str(i) for i in made.json()["simulations"]]
    rates = page.locator('#simulations tbody td[data-col="hp.learning_rate"]')
    page.wait_for_function(
        "ids => ids.every(id => { const row = document.querySelector("
        "`tr[data-simulation-id='${id}'] td[data-col='hp.learning_rate']`);"
        " return row && row.textContent.trim() !== '–'; })",
        arg=new,
        timeout=30_000,
    )
    assert page.locator("#simulations tbody tr").count() == len(GRID) + 2
    assert set(rates.all_inner_texts()[:2]) == {"0.5", "0.05"}, "newest first, with their rates"
    assert page.evaluate("window.__sameDocument") is True, "the page did not reload"
    _shot(page, "live-insert")


def test_it_refreshes_a_rows_metrics_once_when_its_run_logs_epochs(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    page.add_init_script(KEEP_SOCKETS)
    _open(page, f"{live_web.url}/simulations/", sweep)
    page.wait_for_selector("#live-conn.on")
    run = sweep.runs[_name("SGD", 0.01, 1)]
    cell = page.locator(
        f'tr[data-simulation-id="{run.id}"] td[data-col="metric.val_accuracy.best"]'
    )
    assert cell.inner_text() == "0.74"
    better = (
        "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
        "VALUES (%s, 6, 'val_accuracy', 0.99, %s)"
    )
    _sql([(better, [run.id, T0]), (summaries.BACKFILL_METRICS, [])])  # as the worker would
    pushes = [
        {"kind": "status", "simulation_id": str(run.id),
         "status": {"status": "running", "epoch": epoch, "total_epochs": 6}}
        for epoch in (5, 6, 6)
    ]  # fmt: skip
    page.evaluate(PUSH, pushes)
    page.wait_for_function(
        "el => el.textContent.trim() === '0.99'", arg=cell.element_handle(), timeout=15_000
    )
    assert page.evaluate("window.nntList.refreshed") == 1, "one fetch for a burst of epochs"
    row = page.locator(f'tr[data-simulation-id="{run.id}"]')
    assert row.locator("[data-role=epochs]").inner_text() == "6 / 6"


def test_it_scrolls_the_table_inside_its_box_on_a_narrow_screen(
    live_web: Any, sweep: Sweep, browser: Any
) -> None:
    phone = browser.new_page(viewport={"width": 390, "height": 844})
    _open(phone, f"{live_web.url}/simulations/", sweep)
    sizes = phone.evaluate(
        "(() => { const box = document.getElementById('table-box');"
        " return {box: box.scrollWidth > box.clientWidth,"
        " page: document.documentElement.scrollWidth - window.innerWidth}; })()"
    )
    assert sizes["box"], "the table scrolls sideways inside its box"
    assert sizes["page"] <= 1, "the page itself does not scroll sideways"
    _shot(phone, "narrow")


def test_it_says_what_to_do_when_nothing_is_listed(client: Any, make_user: Any) -> None:
    client.force_login(make_user())
    empty = client.get("/simulations/").content.decode()
    assert "No runs yet" in empty and 'href="/experiments/new/"' in empty
    none = client.get(f"/simulations/?q=nothing-{uuid.uuid4().hex}").content.decode()
    assert "No run matches these filters" in none and "Clear filters" in none
    bad = client.get("/simulations/?filter=hp.colour:eq:red&sort=nope").content.decode()
    assert "unknown sort" in bad and "filter left out" in bad


def test_it_overlays_only_the_users_own_runs(client: Any, sweep: Sweep, make_user: Any) -> None:
    mine = [str(s.id) for s in sweep.runs.values()][:2]
    client.force_login(make_user())
    theirs = client.get(f"/simulations/overlay/?ids={','.join(mine)}").content.decode()
    assert "No runs to overlay" in theirs and "2 of the runs asked for are not yours" in theirs
    assert sweep.owner.get_username() not in theirs and "digits-grid" not in theirs
    client.force_login(sweep.owner)
    many = ",".join(mine + [str(uuid.uuid4()) for _ in range(60)] + ["not-an-id"])
    html = client.get(f"/simulations/overlay/?ids={many}").content.decode()
    assert "Overlay of 2 runs" in html and "Only the first 50 runs are drawn" in html
