"""The main pages on a phone (390 px wide) in Chromium: nothing is wider than the screen, wide
tables scroll inside their own box. Screenshots go to test-artifacts/narrow-*.png."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from playwright.sync_api import Page, sync_playwright

from tests.e2e.stack import ROOT, launch_chromium

ARTIFACTS = ROOT / "test-artifacts"
WIDTH = 390
# Elements past the right edge that no ancestor clips or scrolls: what makes a page scroll sideways.
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth, out = [];
  const scrolls = el => { for (let p = el.parentElement; p; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o !== 'visible') { return true; } } return false; };
  const past = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.right > width + 1; };
  document.querySelectorAll('body *').forEach(el => {
    const r = el.getBoundingClientRect();
    if (past(el) && !scrolls(el) && !(el.parentElement && past(el.parentElement))) {   // the outermost
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') +
               (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '') +
               ' right=' + Math.round(r.right));
    }
  });
  return { scroll: document.documentElement.scrollWidth, width: width, past: out.slice(0, 12) };
}"""


@pytest.fixture()
def world(make_user: Any) -> dict[str, Any]:
    """A staff user (the console too) with runs whose names, tags and messages are long."""
    from web.simulations.models import Experiment, Simulation

    user = make_user(staff=True)
    exp = Experiment.objects.create(owner=user, name="a-rather-long-experiment-name", config={})
    runs = [
        Simulation.objects.create(
            experiment=exp,
            owner=user,
            owner_name=user.get_username(),
            status=status,
            name=f"a-rather-long-experiment-name · Adam · lr 0.0001 · fold {i} · {uuid.uuid4().hex}",
            tags=["convolutional-baseline", "learning-rate-sweep", "mnist"],
            total_epochs=40,
            epoch=i * 7,
            message="OutOfMemoryError: " + "x" * 180 if status == "failed" else "",
        )  # fmt: skip
        for i, status in enumerate(("running", "failed", "finished"))
    ]
    return {"user": user, "runs": runs}


def _log_in(page: Page, base: str, user: Any) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user.get_username())
    page.fill("input[name=password]", "pw-long-enough-1")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/simulations/", timeout=30_000)


def test_the_main_pages_fit_a_phone(live_web: Any, world: dict[str, Any]) -> None:
    runs = world["runs"]
    pages = {
        "home": "/",
        "list": "/simulations/",
        "run": f"/simulations/{runs[1].id}/",
        "overlay": f"/simulations/overlay/?ids={runs[0].id},{runs[1].id}",
        "new-experiment": "/experiments/new/",
        "account": "/accounts/",
        "console": "/console/",
    }
    found: dict[str, Any] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": 844}, device_scale_factor=1)
            _log_in(page, live_web.url, world["user"])
            for name, path in pages.items():
                page.goto(live_web.url + path)
                page.wait_for_load_state("networkidle")
                page.screenshot(path=str(ARTIFACTS / f"narrow-{name}.png"), full_page=True)
                found[name] = page.evaluate(OVERFLOW_JS)
        finally:
            browser.close()
    (ARTIFACTS / "narrow-report.json").write_text(json.dumps(found, indent=1))
    wide = {n: f for n, f in found.items() if f["scroll"] > f["width"] or f["past"]}
    assert wide == {}, wide
