"""Issue 17's browser check on the real stack (`nntracker up`: Kafka, the stream workers, the
database, the orchestrator and real trainers): the run page of a broken run (SGD at learning
rate 10 on the demo's digits, whose loss blows up) shows the diagnosis banner as it appears,
pushed live while the page is open, with a mark on its metric chart and a failing chip in the
runs table; the page of a healthy run (the demo: Adam at 0.001) shows none, before or after a
reload. The user may run one simulation at a time (an admin's quota), so the broken run waits
in the queue until the healthy one ends: its page is open, and empty, before it trains at all.
Screenshots: test-artifacts/diagnosis-*.png."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page

from tests import polling
from tests.e2e.stack import ROOT, log_in, token_session, watch

pytestmark = pytest.mark.e2e
ARTIFACTS = ROOT / "test-artifacts"
USER, PASSWORD = "diagnosed", "Quartz-Diagnosed-4711"
ADMIN, ADMIN_PASSWORD = "diagnosis-admin", "Quartz-Admin-4711"
EPOCHS = 8
BANNER = "document.getElementById('diagnosis-banner')"


def _submit(
    api: requests.Session, base: str, name: str, optimizer: str, rate: float, epochs: int = EPOCHS
) -> str:
    """One run of the demo's model and data with this optimizer and learning rate; its id."""
    from trainer.demo import write_demo

    with tempfile.TemporaryDirectory() as tmp:
        config, model, paths = write_demo(Path(tmp), total_epochs=epochs)
        files = {"model": ("model.json", json.dumps(model).encode())}
        for role, path in paths.items():
            files[f"dataset_{role}"] = (Path(path).name, Path(path).read_bytes())
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    config.update(
        name=name,
        optimizers=[{"optimizer": optimizer, "conf": {}}],
        learning_rates=[rate],
        tags=["diagnosis-e2e"],
    )
    resp = api.post(
        f"{base}/api/experiments", data={"config": json.dumps(config)}, files=files, timeout=400
    )
    assert resp.status_code == 201, f"submission refused: {resp.status_code} {resp.text[:800]}"
    return str(resp.json()["simulations"][0])


def _ended(api: requests.Session, base: str, sid: str) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        sim = api.get(f"{base}/api/simulations/{sid}", timeout=30).json()
        return sim if sim["status"] in ("finished", "failed", "stopped") else None

    return polling.until(done, 600, f"run {sid} to end", interval=2)


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"diagnosis-{name}.png"), full_page=True)


def _open(page: Page, base: str, sid: str) -> dict[str, Any]:
    """The run page, connected; what it showed when it was rendered."""
    page.goto(f"{base}/simulations/{sid}/")
    page.wait_for_function("document.getElementById('live-conn').textContent === 'live'")
    return page.evaluate(
        f"({{status: document.getElementById('sim-status').textContent,"
        f" items: {BANNER}.childElementCount}})"
    )


def _one_run_at_a_time(stack: Any, base: str) -> None:
    """An admin sets the user's max_concurrent_runs to 1: a second run waits in the queue."""
    stack.ensure_user(ADMIN, ADMIN_PASSWORD, staff=True)
    admin = token_session(base, ADMIN, ADMIN_PASSWORD)
    users = admin.get(f"{base}/api/admin/users", params={"q": USER}, timeout=30).json()
    uid = next(u["id"] for u in users if u["username"] == USER)
    resp = admin.put(
        f"{base}/api/admin/users/{uid}/quota", json={"max_concurrent_runs": 1}, timeout=30
    )
    assert resp.ok, resp.text


def test_it_shows_the_diagnosis_banner_live_on_a_broken_run_and_none_on_a_healthy_one(
    browser: Browser, base: str, api: requests.Session, stack: Any
) -> None:
    _one_run_at_a_time(stack, base)
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    broken_page, healthy_page = context.new_page(), context.new_page()
    problems = watch(broken_page) + watch(healthy_page)
    log_in(broken_page, f"{base}/simulations/", USER, PASSWORD)  # one session for both tabs

    # Long enough to still hold the slot when the broken run is submitted.
    healthy = _submit(api, base, "healthy · Adam · lr 0.001", "Adam", 0.001, epochs=40)
    polling.until(
        lambda: (
            api.get(f"{base}/api/simulations/{healthy}", timeout=30).json()["status"]
            not in ("queued",)
        ),
        300,
        "the healthy run to take the one run slot",
        interval=1,
    )
    broken = _submit(api, base, "diverging · SGD · lr 10", "SGD", 10.0)
    # The broken run waits for the healthy one's slot: nothing of it is diagnosed yet, and
    # whatever its banner shows later came over the page's socket.
    at_load = _open(broken_page, base, broken)
    waiting = api.get(f"{base}/api/simulations/{broken}", timeout=30).json()
    assert waiting["status"] == "queued" and waiting["epoch"] == 0, (
        waiting["status"],
        waiting["message"],
        api.get(f"{base}/api/simulations/{healthy}", timeout=30).json()["status"],
    )
    assert at_load["items"] == 0, f"already diagnosed when the page was rendered: {at_load}"
    _open(healthy_page, base, healthy)
    assert healthy_page.locator("#diagnoses").is_hidden()

    fatal = "#diagnosis-banner .diagnosis[data-severity=fatal]"
    broken_page.wait_for_selector(fatal, timeout=600_000)
    assert broken_page.evaluate("window.nntDiagnoses.updates") >= 1, "pushed live"
    shown = broken_page.locator("#diagnosis-banner .diagnosis").evaluate_all(
        "items => items.map(d => d.getAttribute('data-problem'))"
    )
    assert {"nonfinite", "divergence"} & set(shown), shown
    first = broken_page.locator(fatal).first
    text = first.inner_text()
    assert "Try: " in text and "since epoch " in text, text
    assert broken_page.locator("#diagnoses").is_visible()
    marks = broken_page.evaluate(
        "(document.getElementById('chart-metrics').layout.shapes || []).map(s => s.name)"
    )
    assert first.get_attribute("data-problem") in marks, marks
    _shot(broken_page, "broken")

    ended = {sid: _ended(api, base, sid) for sid in (broken, healthy)}
    detail = api.get(f"{base}/api/simulations/{healthy}", timeout=30).json()
    assert detail["diagnoses"] == [], "the healthy run was never diagnosed with a problem"
    assert healthy_page.evaluate(f"{BANNER}.childElementCount") == 0
    assert healthy_page.locator("#diagnoses").is_hidden()
    healthy_page.reload()
    healthy_page.wait_for_selector("#sim-status")
    assert healthy_page.evaluate(f"{BANNER}.childElementCount") == 0, "none after a reload"
    _shot(healthy_page, "healthy")

    listed = context.new_page()
    listed.goto(f"{base}/simulations/?tag=diagnosis-e2e")
    chip = listed.locator(f'tr[data-simulation-id="{broken}"] [data-role=health]')
    assert chip.inner_text() == "failing" and chip.get_attribute("title"), ended[broken]["status"]
    calm = listed.locator(f'tr[data-simulation-id="{healthy}"] [data-role=health]')
    assert calm.inner_text() == "healthy"
    _shot(listed, "runs")
    context.close()
    assert not problems, problems
