"""An open simulation page outlives its web server: `nntracker up` runs everything, the web
process is SIGKILLed and the stack's supervisor starts a new one; the page reconnects its
WebSocket by itself and its chart goes on growing, with no epoch missing or drawn twice."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, sync_playwright

from client.api import ApiClient
from tests.e2e.stack import (
    ROOT,
    UpProcess,
    launch_chromium,
    log_in,
    running_stack,
)

pytestmark = [pytest.mark.integration, pytest.mark.e2e]
USER, PASSWORD = "faulty", "faulty-password-1"
EPOCHS = 200  # far more than the test watches: the run is still training when it ends
WEB_KILLED = re.compile(r"web exited with code -9")  # what the supervisor prints
# The epochs the chart's loss curve holds ([] before its first point).
LOSS_X = (
    "((document.getElementById('chart-metrics').data || []).find(t => t.name === 'loss') "
    "|| {x: []}).x.slice()"
)


@pytest.fixture(scope="module")
def stack() -> Iterator[UpProcess]:
    """`nntracker up` in its own NNT_HOME."""
    with running_stack("nnt-faults-up-") as up:
        yield up


def submit_long_run(up: UpProcess) -> str:
    """A user and a long digits run, created as a user would (CLI, REST upload)."""
    from trainer.demo import write_demo

    made = subprocess.run(
        [sys.executable, "-m", "client", "manage", "ensure_user", "--username", USER,
         "--password-stdin"], input=PASSWORD + "\n", cwd=ROOT, env=up.env, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr[-2000:]
    client = ApiClient(f"http://127.0.0.1:{up.ports['web']}")
    client.login(USER, PASSWORD)
    folder = up.home / "upload"
    config, model, paths = write_demo(folder, EPOCHS)
    config["collect"] = {"gradients": False, "activations": False}
    (folder / "model.json").write_text(json.dumps(model))
    body = client.upload_body(config, folder / "model.json", {k: Path(v) for k, v in paths.items()})
    return str(client.submit(body)["simulations"][0])


def points(page: Page) -> int:
    return int(page.locator("#chart-metrics").get_attribute("data-points") or 0)


def wait(page: Page, probe: str, what: str, timeout_s: float) -> None:
    """Until the page's own JavaScript says `probe` is true."""
    try:
        page.wait_for_function(probe, timeout=timeout_s * 1000, polling=250)
    except Exception as exc:  # noqa: BLE001 - re-raised with what the page shows
        conn = page.locator("#live-conn").text_content()
        raise AssertionError(f"{what}: not within {timeout_s:.0f} s (connection: {conn!r}, "
                             f"points: {points(page)})") from exc  # fmt: skip


def test_it_reconnects_an_open_page_after_the_web_process_is_killed(stack: UpProcess) -> None:
    sid = submit_long_run(stack)
    url = f"http://127.0.0.1:{stack.ports['web']}/simulations/{sid}/"
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page()
        loads: list[str] = []
        page.on("load", lambda p: loads.append(p.url))
        log_in(page, url, USER, PASSWORD)
        loads.clear()
        conn = "document.getElementById('live-conn').textContent"
        wait(page, f"{conn} === 'live'", "the page's socket open", 30)
        wait(page, f"{LOSS_X}.length >= 2", "two epochs on the chart", 240)

        web = stack.child("web", "serve")
        web.send_signal(signal.SIGKILL)
        wait(page, f"{conn} !== 'live'", "the page noticed its socket closed", 30)
        stack.wait_for(WEB_KILLED, 30)
        wait(page, f"{conn} === 'live'", "the socket reconnected by itself", 90)
        at_reconnect = page.evaluate(LOSS_X)
        wait(page, f"{LOSS_X}.length >= {len(at_reconnect) + 2}", "the chart growing again", 120)
        loss_x = page.evaluate(LOSS_X)
        browser.close()

    assert stack.child("web", "serve").pid != web.pid, "the supervisor started a new web process"
    assert loss_x == list(range(loss_x[0], loss_x[0] + len(loss_x))), (
        f"the chart's epochs have a gap or a repeat: {loss_x}"
    )
    assert loads == [], "the page recovered without being reloaded"
