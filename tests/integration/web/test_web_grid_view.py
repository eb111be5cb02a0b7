"""The grid views page in a real browser on the real server: one parallel-coordinates line per
run of the experiment (or tag) the user may see, failed and value-less runs greyed and listed,
a click on a line or a scatter point opens that run, and another user's run is never drawn."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
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
# optimizer, learning rate, fold, status, best val_accuracy (None: nothing logged yet)
GRID = [
    ("Adam", 0.01, 1, "finished", 0.93),
    ("Adam", 0.01, 2, "finished", 0.91),
    ("Adam", 0.1, 1, "finished", 0.84),
    ("SGD", 0.01, 1, "finished", 0.78),
    ("SGD", 0.1, 2, "failed", 0.42),
    ("SGD", 0.1, 1, "queued", None),
]


@dataclass
class Sweep:
    """One user's experiment of GRID runs, tagged `tag`, and another user's run with that tag."""

    owner: Any
    experiment: Any
    runs: dict[str, Any]  # name -> Simulation
    tag: str
    stranger_run: Any


def _metrics(sim: Any, best: float) -> None:
    """Three epochs of val_accuracy and loss, stored and summarised (store/summaries.py)."""
    rows = [
        (sim.id, epoch, name, value, T0)
        for epoch, scale in ((1, 0.8), (2, 1.0), (3, 0.97))
        for name, value in (("val_accuracy", best * scale), ("loss", 1.2 - best * scale))
    ]
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )
        cur.execute(summaries.BACKFILL_METRICS)  # a merge: other runs' summaries stay the same


def _run(owner: Any, exp: Any, opt: str, lr: float, fold: int, status: str, tag: str) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner,
        owner_name=owner.get_username(),
        experiment=exp,
        name=f"grid · {opt} · lr {lr:g} · fold {fold}",
        status=status,
        epoch=3 if status != "queued" else 0,
        total_epochs=3,
        message="loss became NaN at epoch 3" if status == "failed" else "",
        tags=[tag],
        config={
            "optimizer": {"optimizer": opt},
            "loss": {"loss_function": "categorical_crossentropy"},
            "learning_rate": lr,
            "fold": fold,
            "folds": 2,
        },
    )


@pytest.fixture()
def sweep(make_user: Any) -> Sweep:
    """Ada's six runs (one failed, one with nothing logged) and Carl's run with Ada's tag."""
    from web.simulations.models import Experiment

    ada, carl = make_user(), make_user()
    tag = f"sweep-{uuid.uuid4().hex[:6]}"
    config = {"name": "grid", "total_epochs": 3, "batch_size": 32, "k_fold_validation": 2}
    exp = Experiment.objects.create(owner=ada, name="grid", config=config)
    runs = {}
    for opt, lr, fold, status, best in GRID:
        sim = _run(ada, exp, opt, lr, fold, status, tag)
        if best is not None:
            _metrics(sim, best)
        runs[sim.name] = sim
    theirs = Experiment.objects.create(owner=carl, name="theirs", config=config)
    stranger = _run(carl, theirs, "RMSprop", 0.05, 1, "finished", tag)
    _metrics(stranger, 0.99)
    return Sweep(ada, exp, runs, tag, stranger)


@pytest.fixture()
def page(live_web: Any) -> Iterator[Page]:
    """A Chromium page wide enough for the charts."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        yield browser.new_page(viewport={"width": 1280, "height": 1100})
        browser.close()


def _open_grid(page: Page, url: str, user: Any) -> None:
    log_in(page, url, user.get_username(), PASSWORD)
    page.wait_for_selector("#grid-root[data-ready='1']", timeout=30_000)


def _drawn(page: Page) -> dict[str, str]:
    """The runs the parallel coordinates draw: id -> the classes of its line."""
    return page.eval_on_selector_all(
        ".pc-run",
        "els => Object.fromEntries(els.map(e => [e.dataset.id, e.getAttribute('class')]))",
    )


def _near_end(page: Page, selector: str) -> tuple[float, float]:
    """A point of a line just before the metric axis, where no other run's line crosses it."""
    return tuple(
        page.eval_on_selector(
            selector,
            """path => { const p = path.getPointAtLength(path.getTotalLength() - 12);
                         const box = path.ownerSVGElement.getBoundingClientRect();
                         return [box.left + p.x, box.top + p.y]; }""",
        )
    )


def test_it_draws_one_line_per_run_and_opens_the_clicked_one(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    url = f"{live_web.url}/simulations/grid/?experiment={sweep.experiment.id}"
    _open_grid(page, url, sweep.owner)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "grid-parallel.png"), full_page=True)

    drawn = _drawn(page)
    by_name = sweep.runs
    assert set(drawn) == {str(s.id) for s in by_name.values()}, "one line per run of the experiment"
    failed, queued = (
        by_name["grid · SGD · lr 0.1 · fold 2"],
        by_name["grid · SGD · lr 0.1 · fold 1"],
    )
    assert "pc-grey" in drawn[str(failed.id)] and "pc-grey" in drawn[str(queued.id)]
    assert all(
        "pc-grey" not in cls
        for sid, cls in drawn.items()
        if sid not in (str(failed.id), str(queued.id))
    )
    titles = page.locator(".pc-title").all_text_contents()
    assert titles == ["optimizer", "learning rate (log)", "fold", "val_accuracy (best)"]
    left_out = page.locator("#grid-left-out-list").inner_text()
    assert failed.name in left_out and "NaN" in left_out and queued.name in left_out

    best = by_name["grid · Adam · lr 0.01 · fold 1"]
    line = f".pc-run[data-id='{best.id}'] .pc-line"
    page.mouse.move(*_near_end(page, line))
    tip = page.locator("#grid-tip")
    assert tip.is_visible() and best.name in tip.inner_text() and "0.93" in tip.inner_text()
    page.screenshot(path=str(ARTIFACTS / "grid-hover.png"))
    page.mouse.click(*_near_end(page, line))
    page.wait_for_url(f"{live_web.url}/simulations/{best.id}/", timeout=15_000)
    assert page.locator("h1").inner_text() == best.name
    page.screenshot(path=str(ARTIFACTS / "grid-opened-run.png"))


def test_it_shows_only_the_users_runs_of_a_tag_in_scatter_and_heatmap(
    live_web: Any, sweep: Sweep, page: Page
) -> None:
    _open_grid(
        page, f"{live_web.url}/simulations/grid/?tag={sweep.tag}&x=learning_rate", sweep.owner
    )
    assert set(_drawn(page)) == {str(s.id) for s in sweep.runs.values()}
    assert str(sweep.stranger_run.id) not in page.content(), "another user's run reached the page"

    scatter = page.evaluate(
        "document.getElementById('grid-scatter').data.map(t => [t.name, t.x.length])"
    )
    assert scatter == [["runs", 4], ["failed", 1]], "the queued run has no value to plot"
    page.locator("#grid-scatter").screenshot(path=str(ARTIFACTS / "grid-scatter.png"))

    page.select_option("#grid-y2", "optimizer")
    page.wait_for_function("document.getElementById('grid-scatter').data[0].type === 'heatmap'")
    heat = page.evaluate(
        "(() => { const t = document.getElementById('grid-scatter').data[0];"
        " return {x: t.x, y: t.y, z: t.z}; })()"
    )
    assert heat["x"] == ["0.01", "0.1"] and heat["y"] == ["Adam", "SGD"]
    # Adam at 0.01: folds 1 and 2; SGD at 0.1: only the failed run (not counted) and the queued one
    assert heat["z"][0][0] == pytest.approx((0.93 + 0.91) / 2) and heat["z"][1][1] is None
    notes = page.evaluate(
        "document.getElementById('grid-scatter').layout.annotations.map(a => [a.x, a.y, a.text])"
    )
    assert notes == [[1, 1, "2 runs, none counted"]], "the hole at SGD × 0.1 says why"
    page.locator("#grid-scatter").screenshot(path=str(ARTIFACTS / "grid-heatmap.png"))

    page.select_option("#grid-y2", "")
    page.wait_for_function("document.getElementById('grid-scatter').data[0].type === 'scatter'")
    point = page.locator("#grid-scatter .scatterlayer .trace:first-child .point").first
    point.click(force=True)
    page.wait_for_url(f"{live_web.url}/simulations/*/", timeout=15_000)
    opened = page.url.rstrip("/").rsplit("/", 1)[1]
    assert opened in {str(s.id) for s in sweep.runs.values()}

    page.goto(f"{live_web.url}/simulations/grid/")
    page.screenshot(path=str(ARTIFACTS / "grid-chooser.png"))
    page.click(f"a[href='?experiment={sweep.experiment.id}']")
    page.wait_for_selector("#grid-root[data-ready='1']", timeout=30_000)
    assert page.locator(".pc-run").count() == len(sweep.runs)


def test_it_says_when_there_is_nothing_to_draw(client: Any, sweep: Sweep, make_user: Any) -> None:
    client.force_login(sweep.owner)
    theirs = sweep.stranger_run.experiment_id
    html = client.get(f"/simulations/grid/?experiment={theirs}").content.decode()
    assert "No runs here" in html and "theirs" not in html and "grid.js" not in html
    chooser = client.get("/simulations/grid/").content.decode()
    assert f"?experiment={sweep.experiment.id}" in chooser and sweep.tag in chooser
    assert f"?experiment={theirs}" not in chooser
    bad = client.get("/simulations/grid/?experiment=nope").content.decode()
    assert "is not an experiment id" in bad
    client.force_login(make_user())
    assert "No runs to compare yet" in client.get("/simulations/grid/").content.decode()


def test_it_links_the_grid_view_from_the_runs_list_and_a_run(client: Any, sweep: Sweep) -> None:
    client.force_login(sweep.owner)
    exp = sweep.experiment.id
    listed = client.get(f"/simulations/?experiment={exp}").content.decode()
    assert f'href="/simulations/grid/?experiment={exp}"' in listed
    tagged = client.get(f"/simulations/?tag={sweep.tag}").content.decode()
    assert f'href="/simulations/grid/?tag={sweep.tag}"' in tagged
    run = next(iter(sweep.runs.values()))
    assert (
        f'href="/simulations/grid/?experiment={exp}"'
        in client.get(f"/simulations/{run.id}/").content.decode()
    )
