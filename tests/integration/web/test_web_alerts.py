"""Diagnoses on the pages: the run page's banner rendered from the stored diagnoses, live
`diagnosis` updates routed through the real channel layer to the run's page, the lists and the
owner's alert sockets (filtered by their alert level), the alert level saved from the account
page and the API, and in Chromium the banner added and removed live, marks on the chart, the
runs table's chip, a toast and a desktop notification on another page. Screenshots:
test-artifacts/alerts-*.png."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from confluent_kafka import Producer
from django.db import connection
from playwright.sync_api import Page, sync_playwright

from schemas import topics
from tests.e2e.stack import ROOT, launch_chromium, log_in
from tests.integration.web.conftest import LiveWeb, serving

PASSWORD = "pw-long-enough-1"  # make_user's
T0 = datetime(2025, 5, 1, 9, 0, tzinfo=UTC)
ARTIFACTS = ROOT / "test-artifacts"


def diagnosis(problem: str, first: int, last: int, **extra: Any) -> dict[str, Any]:
    """A Diagnosis as the stream workers send it (model_dump(mode="json"))."""
    fatal = problem in ("nonfinite", "divergence", "dead_network")
    texts = {
        "nonfinite": ("NaN in training", "loss is NaN since epoch 2", "lower the learning rate"),
        "dead_units": ("Dead ReLU units", "70% of dense_1's units never fire", "try LeakyReLU"),
        "slow_convergence": ("Slow convergence", "loss fell 0.1% in 5 epochs", "raise the rate"),
    }
    title, summary, fix = texts[problem]
    return {
        "problem": problem, "severity": "fatal" if fatal else "warning", "title": title,
        "summary": summary, "fix": fix, "layers": ["dense_1"] if problem == "dead_units" else [],
        "first_epoch": first, "last_epoch": last, "evidence": {},
    } | extra  # fmt: skip


def update(sim: Any, diagnoses: list[dict[str, Any]], verdict: str) -> dict[str, Any]:
    """The `diagnosis` LiveUpdate of a run's new active set."""
    return {
        "kind": "diagnosis",
        "simulation_id": str(sim.id),
        "owner": sim.owner_name,
        "diagnoses": diagnoses,
        "health": {"verdict": verdict, "flags": []},
    }


def _sim(owner: Any, name: str = "sgd lr 10", **fields: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner, owner_name=owner.get_username(), name=name, status="running",
        epoch=3, total_epochs=10, started_at=T0, **fields,
    )  # fmt: skip


def _store(sim: Any, rows: list[tuple[dict[str, Any], bool]], ago_s: float = 0) -> None:
    """Diagnosis rows as the stream workers keep them (store/diagnoses.py), first reported
    `ago_s` seconds ago."""
    with connection.cursor() as cur:
        for d, active in rows:
            cur.execute(
                "INSERT INTO nnt_run_diagnosis (simulation_id, problem, severity, title, summary,"
                " fix, layers, first_epoch, last_epoch, last_at, active, reported_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
                " now() - %s * interval '1 second')",
                [sim.id, d["problem"], d["severity"], d["title"], d["summary"], d["fix"],
                 d["layers"], d["first_epoch"], d["last_epoch"], T0, active, ago_s],
            )  # fmt: skip


def _signed_in(client: Any, user: Any) -> Any:
    assert client.login(username=user.get_username(), password=PASSWORD)
    return client


def test_it_renders_the_active_diagnoses_fatal_first_on_the_run_page(
    client: Any, make_user: Any
) -> None:
    ada = make_user()
    broken, healthy = _sim(ada), _sim(ada, name="adam lr 0.001")
    _store(broken, [(diagnosis("dead_units", 1, 3), True), (diagnosis("nonfinite", 2, 3), True),
                    (diagnosis("slow_convergence", 1, 1), False)])  # fmt: skip
    _signed_in(client, ada)
    html = client.get(f"/simulations/{broken.id}/").content.decode()
    banner = html.split('id="diagnosis-banner"')[1].split("</section>")[0]
    assert banner.index('data-problem="nonfinite"') < banner.index('data-problem="dead_units"')
    assert "slow_convergence" not in banner, "a diagnosis no longer active is not shown"
    assert "Try: lower the learning rate" in banner and "since epoch 2" in banner
    assert "Layers: dense_1" in banner
    assert 'class="diagnoses"' in html  # shown
    quiet = client.get(f"/simulations/{healthy.id}/").content.decode()
    assert '<div id="diagnosis-banner" role="alert"></div>' in quiet
    assert 'class="diagnoses hidden"' in quiet


def test_it_saves_the_alert_level_from_the_account_page_and_the_api(
    client: Any, make_user: Any
) -> None:
    from web.accounts import alerts

    ada = make_user()
    _signed_in(client, ada)
    page = client.get("/accounts/").content.decode()
    assert 'name="diagnoses" value="off"' in page and "checked" in page.split('value="off"')[1][:40]
    token = page.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]
    resp = client.post("/accounts/alerts/", {"diagnoses": "fatal", "csrfmiddlewaretoken": token})
    assert resp.status_code == 302 and alerts.preference(ada) == "fatal"
    bad = client.post("/accounts/alerts/", {"diagnoses": "loud", "csrfmiddlewaretoken": token})
    assert bad.status_code == 400 and alerts.preference(ada) == "fatal"
    # the API, with a token (the banner's "Notify me" calls it with the session)
    made = client.post(
        "/api/tokens", {"username": ada.get_username(), "password": PASSWORD},
        content_type="application/json",
    )  # fmt: skip
    auth = {"HTTP_AUTHORIZATION": f"Bearer {made.json()['token']}"}
    put = client.put("/api/accounts/me/alerts", {"diagnoses": "all"},
                     content_type="application/json", **auth)  # fmt: skip
    assert put.status_code == 200 and put.json() == {"diagnoses": "all"}
    refused = client.put("/api/accounts/me/alerts", {"diagnoses": "loud"},
                         content_type="application/json", **auth)  # fmt: skip
    assert refused.status_code == 422 and "diagnoses" in refused.json()["errors"]
    assert client.get("/api/accounts/me/alerts", **auth).json() == {"diagnoses": "all"}


def _socket(user: Any, path: str) -> WebsocketCommunicator:
    from channels.routing import URLRouter

    from web.live.routing import websocket_urlpatterns

    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
    comm.scope["user"] = user
    return comm


def test_it_routes_diagnosis_updates_to_the_page_the_lists_and_the_owners_alerts(
    make_user: Any,
) -> None:
    from web.accounts import alerts
    from web.live.bridge import forward

    ada, carl, admin = make_user(), make_user(), make_user(staff=True)
    run = _sim(ada)
    alerts.set_preference(carl, "all")
    old, nan, dead = (diagnosis("slow_convergence", 1, 3), diagnosis("nonfinite", 3, 3),
                      diagnosis("dead_units", 3, 3))  # fmt: skip
    _store(run, [(old, True)], ago_s=3600)  # reported long before any page opened
    changed = update(run, [nan, dead, old], "failing")
    healed = update(run, [], "healthy")

    async def send(body: dict[str, Any]) -> None:
        await forward(get_channel_layer(), json.dumps(body).encode())

    async def scenario() -> dict[str, Any]:
        page = _socket(ada, f"/ws/simulations/{run.id}/")
        own_list, staff_list = _socket(ada, "/ws/simulations/"), _socket(admin, "/ws/simulations/")
        own_alerts, carls_alerts = _socket(ada, "/ws/alerts/"), _socket(carl, "/ws/alerts/")
        socks = [page, own_list, staff_list, own_alerts, carls_alerts]
        for sock in socks:
            assert (await sock.connect())[0]
        got: dict[str, Any] = {}
        await sync_to_async(_store)(run, [(nan, True), (dead, True)])  # what the workers write
        await send(changed)  # ada's level: off (the default)
        got["page"] = await page.receive_json_from(timeout=5)
        got["list"] = await own_list.receive_json_from(timeout=5)
        got["staff"] = await staff_list.receive_json_from(timeout=5)
        got["off"] = await own_alerts.receive_nothing(timeout=0.3)
        await sync_to_async(alerts.set_preference)(ada, "fatal")
        await send(changed)
        got["fatal"] = await own_alerts.receive_json_from(timeout=5)
        await send(changed)  # sent again: announced once
        got["again"] = await own_alerts.receive_nothing(timeout=0.3)
        await sync_to_async(alerts.set_preference)(ada, "all")
        await send(changed)
        got["all"] = await own_alerts.receive_json_from(timeout=5)
        await send(healed)
        got["later"] = [await page.receive_json_from(timeout=5) for _ in range(4)]
        got["carl"] = await carls_alerts.receive_nothing(timeout=0.3)
        for sock in socks:
            await sock.disconnect()
        return got

    got = asyncio.run(scenario())
    assert got["page"] == {
        "kind": "diagnosis", "simulation_id": str(run.id), "diagnoses": changed["diagnoses"],
        "health": {"verdict": "failing", "flags": []},
    }  # fmt: skip
    assert got["list"] == got["page"] == got["staff"]
    assert got["off"], "alerts are off by default"
    alert = got["fatal"]
    assert alert["kind"] == "alert" and alert["name"] == "sgd lr 10"
    assert [d["problem"] for d in alert["diagnoses"]] == ["nonfinite"], "fatal only"
    assert alert["diagnoses"][0]["fix"] == "lower the learning rate"
    assert got["again"]
    later = [d["problem"] for d in got["all"]["diagnoses"]]
    assert later == ["dead_units"], "the warning now, and never the diagnosis reported long ago"
    healthy = got["later"][-1]
    assert healthy["diagnoses"] == [] and healthy["health"]["verdict"] == "healthy"
    assert got["carl"], "another user never hears of ada's runs"


@pytest.fixture(scope="module")
def bridged_web(
    django_ready: Path, web_db_url: str, kafka_bootstrap: str, tmp_path_factory: Any
) -> Iterator[LiveWeb]:
    """The web server with its nnt.live bridge on: what reaches nnt.live reaches the page."""
    log = tmp_path_factory.mktemp("alerts-web") / "web.log"
    with serving(django_ready, web_db_url, kafka_bootstrap, log, NNT_LIVE_BRIDGE="true") as web:
        yield web


def _epochs(sim: Any, last: int) -> None:
    rows = [(sim.id, e, name, 2.0 / e if name == "loss" else 0.5, T0)
            for e in range(1, last + 1) for name in ("loss", "accuracy")]  # fmt: skip
    with connection.cursor() as cur:
        cur.executemany("INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)", rows)


# A desktop Notification that records what it was asked to show (headless Chromium shows none).
FAKE_NOTIFICATION = """
window.__notes = [];
window.Notification = function (title, opts) { window.__notes.push({title: title, body: opts.body, tag: opts.tag}); };
window.Notification.permission = "granted";
window.Notification.requestPermission = function () { return Promise.resolve("granted"); };
"""


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"alerts-{name}.png"))


def _push(producer: Producer, body: dict[str, Any], page: Page, until: str) -> None:
    """Publish to nnt.live until the page shows it (the bridge starts at the latest offset)."""
    for _ in range(120):
        producer.produce(topics.LIVE, json.dumps(body).encode(), key=body["simulation_id"].encode())
        producer.flush(10)
        try:
            page.wait_for_function(until, timeout=1000)
            return
        except Exception:  # noqa: BLE001 - not there yet: publish again
            continue
    page.wait_for_function(until, timeout=1000)


@pytest.mark.e2e
def test_it_shows_diagnoses_live_and_alerts_on_another_page(
    bridged_web: LiveWeb, kafka_bootstrap: str, make_user: Any
) -> None:
    from web.accounts import alerts

    ada = make_user()
    run = _sim(ada)
    _epochs(run, 3)
    banner = "document.getElementById('diagnosis-banner')"
    shapes = "(document.getElementById('chart-metrics').layout.shapes || [])"
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.add_init_script(FAKE_NOTIFICATION)
        page = context.new_page()
        log_in(page, f"{bridged_web.url}/simulations/{run.id}/", ada.get_username(), PASSWORD)
        page.wait_for_function("document.getElementById('live-conn').textContent === 'live'")
        assert page.evaluate(f"{banner}.childElementCount") == 0
        assert page.locator("#diagnoses").is_hidden()

        nan = update(run, [diagnosis("nonfinite", 2, 2)], "failing")
        _push(producer, nan, page, f"{banner}.querySelector('[data-problem=nonfinite]') !== null")
        item = page.locator("#diagnosis-banner .diagnosis[data-problem=nonfinite]")
        assert (
            "NaN in training" in item.inner_text()
            and "Try: lower the learning rate" in item.inner_text()
        )
        assert page.locator("#diagnoses").is_visible()
        page.wait_for_function(f"{shapes}.length === 1")
        _shot(page, "banner")
        mark = page.evaluate(f"{shapes}[0]")
        assert mark["x0"] == 2 and mark["line"]["dash"] == "dash" and mark["name"] == "nonfinite"

        _push(producer, update(run, [], "healthy"), page, f"{banner}.childElementCount === 0")
        assert page.locator("#diagnoses").is_hidden()
        assert page.evaluate(f"{shapes}.length") == 0

        page.goto(f"{bridged_web.url}/accounts/")  # subscribe on the settings page
        page.check("#alert-form input[value=all]")
        page.click("#alert-save")
        page.wait_for_selector("text=Diagnosis alerts: all diagnoses.")
        ran = ThreadPoolExecutor(1).submit(lambda: (alerts.preference(ada), connection.close()))
        assert ran.result()[0] == "all"

        page.goto(f"{bridged_web.url}/simulations/")  # any page of the product
        page.wait_for_function("window.nntAlerts && window.nntAlerts.connected")
        chip = f"document.querySelector('tr[data-simulation-id=\"{run.id}\"] [data-role=health]')"
        dead = update(run, [diagnosis("dead_units", 3, 3)], "warning")
        ThreadPoolExecutor(1).submit(
            lambda: (_store(run, [(dead["diagnoses"][0], True)]), connection.close())
        ).result()
        _push(producer, dead, page, "document.querySelectorAll('#toasts .toast').length > 0")
        toast = page.locator("#toasts .toast[data-problem=dead_units]")
        text = toast.inner_text()
        assert "Dead ReLU units" in text and "sgd lr 10" in text and "Try: try LeakyReLU" in text
        assert page.locator("#toasts .toast").count() == 1, "announced once"
        page.wait_for_function(f"{chip}.title === 'Dead ReLU units'")
        assert page.evaluate(f"{chip}.className") == "health-chip health-warning"
        _shot(page, "toast")
        notes = page.evaluate("window.__notes")
        assert notes[0]["title"] == "Dead ReLU units · sgd lr 10"
        assert notes[0]["tag"] == f"nnt-{run.id}-dead_units"
        browser.close()
