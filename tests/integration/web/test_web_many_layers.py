"""A run with 150 layers on its Graphs tab in Chromium: the page draws only the layers in view
and the others as they scroll in, with boxes of the right height meanwhile; the filter and the
flagged-only toggle; the ridgeline view and the epoch slider. And the /tensors answers the page
is built on: statistics only, or the histograms of the variables asked for."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from bench.pages import layer_rows
from stream_processors import rows
from tests.e2e.stack import ROOT, launch_chromium, log_in
from tests.integration.web.conftest import LiveWeb, serving
from tests.timeseries_data import write

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
LAYERS, EPOCHS, VARIABLES = 150, 20, 4
FLAGGED = len(range(6, LAYERS, 7))  # layer_rows flags every 7th layer's activations
PASSWORD = "pw-long-enough-1"
ARTIFACTS = ROOT / "test-artifacts"
CHARTS_IN = "document.querySelectorAll('{} .js-plotly-plot').length"


@pytest.fixture(scope="module")
def run(django_ready: Path, web_db_url: str) -> tuple[str, uuid.UUID]:
    """A user and their finished run of 150 layers, 20 epochs each: (username, run id)."""
    from django.contrib.auth import get_user_model

    from web.simulations.models import Simulation

    owner = get_user_model().objects.create_user(f"u{uuid.uuid4().hex[:10]}", password=PASSWORD)
    sim = Simulation.objects.create(owner=owner, owner_name=owner.username, name="densenet-ish",
        status="finished", epoch=EPOCHS, total_epochs=EPOCHS)  # fmt: skip
    write(web_db_url, {rows.TENSOR: layer_rows(sim.id, LAYERS, EPOCHS)})
    return owner.username, sim.id


@pytest.fixture(scope="module")
def web(
    django_ready: Path, web_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveWeb]:
    """The product's web server on the test database (no broker: the page sends no command)."""
    log = tmp_path_factory.mktemp("many-layers-web") / "web.log"
    with serving(django_ready, web_db_url, "127.0.0.1:9", log) as live:
        yield live


@pytest.fixture()
def page(web: LiveWeb, run: tuple[str, uuid.UUID]) -> Iterator[Page]:
    """Chromium logged in as the run's owner, on its Graphs tab once its first charts are drawn."""
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        tab = browser.new_page(viewport={"width": 1366, "height": 900})
        errors: list[str] = []
        tab.on("pageerror", lambda exc: errors.append(str(exc)))
        requests: list[str] = []
        tab.on("request", lambda req: requests.append(req.url))
        url = f"{web.url}/simulations/{run[1]}/"
        log_in(tab, url, run[0], PASSWORD)
        tab.goto(url + "#graphs")
        tab.wait_for_function("window.nntLayers && window.nntLayers.ready", timeout=120_000)
        tab.requests = requests  # type: ignore[attr-defined]
        yield tab
        browser.close()
        assert errors == [], f"the page threw: {errors[:3]}"


def shot(page: Page, name: str, selector: str | None = None) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    target = page.locator(selector) if selector else page
    target.screenshot(path=str(ARTIFACTS / f"layers-{name}.png"))


def charts(page: Page, scope: str = "#layer-list") -> int:
    return int(page.evaluate(CHARTS_IN.format(scope)))


def shown_cards(page: Page) -> int:
    return int(page.evaluate("document.querySelectorAll('.layer-card:not(.hidden)').length"))


def test_it_draws_only_the_layers_in_view_then_the_rest_as_they_scroll_in(page: Page) -> None:
    assert page.evaluate("window.nntLayers.layers") == LAYERS
    assert page.locator(".layer-card").count() == LAYERS
    assert page.locator("#layer-list .chart.compact").count() == LAYERS * VARIABLES
    drawn = charts(page)
    assert drawn < LAYERS, f"{drawn} layer charts drawn before any scrolling"
    assert page.locator("#scatter3d .main-svg").count() == 0, "the 3-D scatter drew out of view"
    tensors = [u for u in page.requests if "/tensors" in u and "/values" not in u]  # type: ignore[attr-defined]
    assert any("histograms=false" in u for u in tensors)
    assert all("histograms=false" in u or "key=" in u for u in tensors), tensors
    assert "150 layers" in page.locator("#layers-count").inner_text()
    height = page.evaluate("document.documentElement.scrollHeight")
    shot(page, "initial")

    page.locator("#layer-card-149").scroll_into_view_if_needed()
    page.wait_for_function(f"{CHARTS_IN.format('#layer-card-149')} === {VARIABLES}", timeout=60_000)
    page.wait_for_timeout(300)  # let the idle queue finish the neighbours for the screenshot
    shot(page, "bottom")
    assert charts(page) < LAYERS * VARIABLES, "scrolling to the end drew every layer on the way"
    grown = page.evaluate("document.documentElement.scrollHeight") - height
    assert abs(grown) <= 40, f"the page grew {grown} px as charts replaced their boxes"


def test_it_filters_layers_by_name_and_by_flags(page: Page) -> None:
    page.fill("#layer-filter", "conv25_")
    page.wait_for_function("document.querySelectorAll('.layer-card:not(.hidden)').length === 6")
    assert page.locator("#layers-count").inner_text().endswith("6 shown")
    assert page.locator("#layer-select option").count() == 6
    page.fill("#layer-filter", "")
    page.check("#layer-flagged")
    page.wait_for_function(
        f"document.querySelectorAll('.layer-card:not(.hidden)').length === {FLAGGED}"
    )
    flagged = page.locator(".layer-card:not(.hidden)").first
    assert "dead units at epochs 5–20" in flagged.locator(".flag").inner_text()
    flagged.scroll_into_view_if_needed()
    page.wait_for_function(f"{CHARTS_IN.format('.layer-card:not(.hidden)')} >= {VARIABLES}")
    shot(page, "flagged")
    assert shown_cards(page) == FLAGGED


def test_it_draws_a_ridgeline_and_selects_an_epoch_with_the_slider(page: Page) -> None:
    page.locator("#layers-inspect").scroll_into_view_if_needed()
    page.wait_for_function("(document.getElementById('heat-kernel').data || []).length === 1")
    assert page.evaluate("document.getElementById('heat-kernel').data[0].type") == "heatmap"
    page.click("#dist-view [data-view=ridgeline]")
    page.wait_for_function(
        f"(document.getElementById('heat-kernel').data || []).length === {EPOCHS}"
    )
    traces = page.evaluate("document.getElementById('heat-kernel').data.map(t => [t.name, t.fill])")
    assert traces == [[f"epoch {e}", "toself"] for e in range(1, EPOCHS + 1)]
    assert page.locator("#epoch-value").inner_text() == str(EPOCHS)

    page.locator("#epoch-slider").fill("4")
    page.wait_for_function(
        "document.getElementById('hist-kernel').getAttribute('data-epoch') === '5'"
    )
    assert page.locator("#epoch-value").inner_text() == "5"
    assert page.get_attribute("#heat-kernel", "data-selected") == "5"
    picked = page.evaluate("document.getElementById('heat-kernel').data.map(t => t.line.color)")
    assert [i for i, c in enumerate(picked) if c == "#dc2626"] == [4]
    bars = page.evaluate("document.getElementById('hist-kernel').data[0]")
    assert bars["type"] == "bar" and sum(bars["y"]) == pytest.approx(1, abs=1e-3)
    page.evaluate("document.getElementById('layers-inspect').scrollIntoView()")
    shot(page, "ridgeline")

    page.click("#dist-view [data-view=heatmap]")
    page.wait_for_function("document.getElementById('heat-kernel').data[0].type === 'heatmap'")
    shapes = page.evaluate("document.getElementById('heat-kernel').layout.shapes")
    assert [s["x0"] for s in shapes] == [5], "the heatmap does not mark the slider's epoch"
    page.locator("#scatter3d").scroll_into_view_if_needed()
    page.wait_for_function("document.querySelectorAll('#scatter3d .main-svg').length > 0")
    assert page.locator("#scatter-note").inner_text() == "576 values · 20 epochs"


def _login(client: Any, username: str) -> None:
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.get(username=username))


def test_it_answers_statistics_only_or_the_histograms_of_the_keys_asked(
    client: Any, run: tuple[str, uuid.UUID]
) -> None:
    _login(client, run[0])
    url = f"/api/simulations/{run[1]}/tensors"
    light = client.get(url + "?histograms=false").json()
    assert len(light) == LAYERS * VARIABLES
    assert all(s["hist"] is None and len(s["stats"]["mean"]) == EPOCHS for s in light)
    keys = [light[0]["key"], light[-1]["key"]]
    full = client.get(f"{url}?key={keys[0]}&key={keys[1]}").json()
    assert [s["key"] for s in full] == keys
    assert all(len(s["hist"]["edges"]) == 33 and len(s["hist"]["density"]) == EPOCHS for s in full)
    bad = client.get(url + "?key=conv1/kernel")
    assert bad.status_code == 422 and "layer_index:kind:variable" in bad.json()["errors"]["key"]
    many = client.get(url + "?" + "&".join(f"key=0:kernel:v{i}" for i in range(201)))
    assert many.status_code == 422 and "at most 200" in many.json()["errors"]["key"]
