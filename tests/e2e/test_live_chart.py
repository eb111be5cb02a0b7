"""A new user runs `nntracker up --demo`, logs in, and watches the demo's chart grow live."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, sync_playwright

from infra.process import port_in_use
from tests.e2e.stack import DEMO_LINE, ROOT, UpProcess, launch_chromium, log_in, start_up

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UpProcess]:
    home = tmp_path_factory.mktemp("nnt-up")
    home.chmod(0o755)
    up = start_up(home)
    yield up
    if up.proc.poll() is None:
        up.interrupt()


@pytest.fixture(scope="module")
def browser_page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        yield page
        browser.close()


def test_it_shows_the_demo_chart_growing_over_a_websocket(
    stack: UpProcess, browser_page: Page
) -> None:
    match = stack.wait_for(DEMO_LINE, timeout=420)
    url, user, password = match.groups()
    page = browser_page
    frames: list[str] = []
    page.on(
        "websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload)))
    )
    http_requests: list[str] = []
    page.on("request", lambda req: http_requests.append(req.url))

    log_in(page, url, user, password)
    chart = page.locator("#chart-metrics")
    chart.wait_for(timeout=30_000)
    first = int(chart.get_attribute("data-points") or 0)
    requests_after_load = len(http_requests)

    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        now = int(chart.get_attribute("data-points") or 0)
        if now >= first + 12 and len(frames) >= 2:
            break
        page.wait_for_timeout(500)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "e2e-demo-chart.png"), full_page=True)
    now = int(chart.get_attribute("data-points") or 0)
    assert len(frames) >= 2, "fewer than two WebSocket frames reached the page"
    assert now >= first + 12, f"chart did not grow by three epochs: {first} -> {now} points"
    assert page.evaluate("window.nntLive.frames") >= 2
    assert page.evaluate("window.nntLive.points") >= 12
    polled = [u for u in http_requests[requests_after_load:] if "/api/" in u]
    assert polled == [], f"the page polled instead of listening: {polled[:3]}"


def test_it_leaves_nothing_running_after_ctrl_c(stack: UpProcess) -> None:
    stack.wait_for(DEMO_LINE, timeout=420) if not any(
        "demo ready" in x for x in stack.lines
    ) else None
    code = stack.interrupt()
    assert code == 0, "\n".join(stack.lines[-40:])
    time.sleep(1)
    assert stack.leftovers() == []
    for name, port in stack.ports.items():
        assert not port_in_use(port), f"{name} port {port} still taken after Ctrl-C"
