"""A running run deleted while two tabs of its owner show it, on the real stack in Chromium: it
leaves the simulation list and its own page says it was deleted, with nothing left to act on,
at once and without a reload (the `deleted` status the orchestrator sends names no owner; the
owner's list pages hear of it all the same)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page

from schemas import lifecycle
from tests.e2e.stack import ROOT, log_in, started_run, watch

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "deleting-user", "Quartz-Deleting-4711"


def live(page: Page) -> None:
    page.wait_for_function(
        "document.getElementById('live-conn').textContent === 'live'", timeout=60_000
    )
    page.evaluate("window.nntOpenedOnce = true")  # gone if anything reloads the page


def buttons(page: Page) -> dict[str, bool]:
    """The run page's lifecycle buttons: action -> enabled."""
    out: dict[str, bool] = page.evaluate(
        """() => Object.fromEntries(Array.from(document.querySelectorAll('#sim-toolbar [data-action]'))
                 .map(b => [b.getAttribute('data-action'), !b.disabled]))"""
    )
    return out


def test_a_deleted_running_run_vanishes_from_every_open_page(
    api: requests.Session, base: str, browser: Browser
) -> None:
    sid = started_run(api, base, "delete")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    listing, run_page = context.new_page(), context.new_page()  # two tabs, one session
    problems = [watch(listing), watch(run_page)]
    log_in(listing, f"{base}/simulations/", USER, PASSWORD)
    row = listing.locator(f'#simulations tr[data-simulation-id="{sid}"]')
    row.wait_for(timeout=30_000)
    run_page.goto(f"{base}/simulations/{sid}/")
    for page in (listing, run_page):
        live(page)
    assert run_page.locator("#sim-status").inner_text() == "running"
    assert buttons(run_page) == {"pause": True, "resume": False, "stop": True, "delete": True}
    # the pages decide with exactly the server's rules (schemas/lifecycle.py)
    assert run_page.evaluate("window.NNT.lifecycle.rules") == lifecycle.as_json()

    gone = api.delete(f"{base}/api/simulations/{sid}")  # another client: the CLI, a script
    assert gone.status_code == 202, gone.text

    listing.wait_for_selector(
        f'#simulations tr[data-simulation-id="{sid}"]', state="detached", timeout=60_000
    )
    run_page.locator("#sim-deleted").wait_for(timeout=60_000)
    ARTIFACTS.mkdir(exist_ok=True)
    run_page.screenshot(path=str(ARTIFACTS / "deleted-run-page.png"))
    listing.screenshot(path=str(ARTIFACTS / "deleted-run-list.png"))
    note = run_page.locator("#sim-deleted")
    assert "This run was deleted" in note.inner_text()
    assert note.locator('a[href="/simulations/"]').is_visible()
    assert run_page.locator("#sim-status").inner_text() == "deleted"
    assert not any(buttons(run_page).values()), buttons(run_page)
    assert run_page.locator("#tag-input").is_disabled()
    assert run_page.locator("#download-link").get_attribute("href") is None
    for page in (listing, run_page):
        assert page.evaluate("window.nntOpenedOnce === true"), "the page was reloaded"

    sim: dict[str, Any] = api.get(f"{base}/api/simulations/{sid}").json()
    assert sim["status"] == "deleted"
    again = api.delete(f"{base}/api/simulations/{sid}")
    assert again.status_code == 409 and "deleted" in again.json()["detail"]
    context.close()
    assert problems == [[], []], problems
