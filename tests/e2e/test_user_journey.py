"""A new user's whole journey in Chromium against `nntracker up --demo`:
home → log-in and register pages → register → create an experiment with the form → the list
follows tags and new runs live → watch the chart grow live → pause → resume → compare with the
other run → download and open the summary, every value and the trained model → the account
page; then an administrator's console and list. Screenshots of every page (1366x768
viewport) go to test-artifacts/journey-*.png."""

from __future__ import annotations

import csv
import io
import json
import re
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, sync_playwright

from tests import polling
from tests.e2e.stack import DEMO_LINE, ROOT, UpProcess, launch_chromium, start_up

FLAGS = [  # WebGL charts: SwiftShader stands in for the GPU
    "--headless",
    "--no-sandbox",
    "--disable-quic",
    "--no-first-run",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = ROOT / "test-artifacts"
EPOCHS = 60


@pytest.fixture(scope="module")
def stack() -> Iterator[UpProcess]:
    # Not under pytest's basetemp: that is private to root (0700), and the embedded PostgreSQL
    # runs as its own user; it also must not be pruned by another pytest session.
    with tempfile.TemporaryDirectory(prefix="nnt-journey-") as tmp:
        home = Path(tmp)
        home.chmod(0o755)
        up = start_up(home)
        yield up
        if up.proc.poll() is None:
            up.interrupt()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "journey-stack.log").write_text("\n".join(up.lines[-3000:]) + "\n")


@pytest.fixture(scope="module")
def page() -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = launch_chromium(pw, FLAGS)
        context = browser.new_context(
            viewport={"width": 1366, "height": 768}, accept_downloads=True
        )
        tab = context.new_page()
        problems: list[str] = []
        tab.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        tab.on(
            "console",
            lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
        )
        yield tab
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "journey-console.log").write_text("\n".join(problems) + "\n")
        browser.close()


def until(check: Callable[[], object], timeout: float, what: str, page: Page) -> object:
    """Poll a condition (the page keeps listening meanwhile); fail naming what never happened."""

    def screenshot() -> str:
        shot(page, "failure")
        return ""

    return polling.until(
        check, timeout, what, interval=0.5, sleep=lambda s: page.wait_for_timeout(s * 1000),
        context=screenshot,
    )  # fmt: skip


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"journey-{name}.png"), full_page=True)


def _experiment(folder: Path, name: str) -> tuple[dict, Path, dict[str, Path]]:
    from trainer.demo import write_demo

    config, model, paths = write_demo(folder, total_epochs=EPOCHS)
    config.update(name=name, learning_rates=[0.001, 0.01], tags=["journey"])
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    model_path = folder / "model.json"
    model_path.write_text(json.dumps(model))
    return config, model_path, {role: Path(p) for role, p in paths.items()}


def _create_with_form(
    page: Page, base: str, config: dict, model: Path, data: dict[str, Path]
) -> None:
    """The create form in JSON mode; it must work (no fallback to the API)."""
    resp = page.goto(f"{base}/experiments/new/")
    assert resp is not None and resp.status == 200, "the create-experiment page is missing"
    page.check("input[name=mode][value=json]")
    page.fill("#id_config_json", json.dumps(config, indent=2))
    page.set_input_files("#id_model", str(model))
    for role, path in data.items():
        page.set_input_files(f"input[name=dataset_{role}_file]", str(path))
    shot(page, "02-create-form")
    page.click("#experiment-form button[type=submit]")
    page.wait_for_url(re.compile(r"/simulations/"), timeout=60_000)


def _api(page: Page, base: str, method: str, url: str, **kwargs: object) -> object:
    """A call of the REST API with the browser's session, as another tab's script would."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    headers = {"X-CSRFToken": token, "Referer": base}
    resp = page.request.fetch(f"{base}{url}", method=method, headers=headers, **kwargs)
    assert resp.ok, f"{method} {url}: {resp.status} {resp.text()[:300]}"
    return resp.json()


def _upload(page: Page, base: str, config: dict, model: Path, data: dict[str, Path]) -> dict:
    files = {
        f"dataset_{role}": {
            "name": p.name,
            "mimeType": "application/octet-stream",
            "buffer": p.read_bytes(),
        }
        for role, p in data.items()
    }
    files["model"] = {
        "name": "model.json",
        "mimeType": "application/json",
        "buffer": model.read_bytes(),
    }
    return _api(
        page, base, "POST", "/api/experiments", multipart={"config": json.dumps(config), **files}
    )  # type: ignore[return-value]


def _row_text(page: Page, sim_id: str) -> str:
    row = page.locator(f'#simulations tr[data-simulation-id="{sim_id}"]')
    return row.inner_text() if row.count() else ""


def _ensure_admin(stack: UpProcess) -> tuple[str, str]:
    """A staff account in the running stack."""
    name, password = "journey-admin", "Admin-Quartz-4711"
    stack.ensure_user(name, password, staff=True)
    return name, password


def _badge(page: Page) -> str:
    return page.locator("#sim-status").inner_text().strip()


def _points(page: Page) -> int:
    return int(page.locator("#chart-metrics").get_attribute("data-points") or 0)


def test_a_new_user_runs_watches_compares_and_downloads(
    stack: UpProcess, page: Page, tmp_path: Path
) -> None:
    match = stack.wait_for(DEMO_LINE, timeout=420)
    base = re.match(r"(https?://[^/]+)", match.group(1)).group(1)
    user, password = f"journey{uuid.uuid4().hex[:6]}", "Quartz-Zebra-4711"

    # what a visitor sees: home, log-in and register pages
    page.goto(f"{base}/")
    assert page.locator("a[href='/accounts/register/']").count() > 0
    shot(page, "00-home")
    page.goto(f"{base}/accounts/login/")
    shot(page, "00-login")

    # register
    page.goto(f"{base}/accounts/register/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password1]", password)
    page.fill("input[name=password2]", password)
    shot(page, "00-register")
    page.click("form.form button[type=submit]")
    page.wait_for_url(lambda url: "/register/" not in url, timeout=30_000)
    page.goto(f"{base}/simulations/")
    assert "No runs yet" in page.content()
    shot(page, "01-empty-list")

    # a second tab keeps the (empty) list open while the form creates the experiment there
    watcher = page.context.new_page()
    watcher.goto(f"{base}/simulations/")
    watcher.evaluate("window.__sameDocument = true")
    until(lambda: watcher.locator("#live-conn.on").count(), 30, "the list's socket", watcher)

    # create an experiment with the form: two learning rates, two simulations
    config, model, data = _experiment(tmp_path, f"journey-{uuid.uuid4().hex[:4]}")
    _create_with_form(page, base, config, model, data)
    rows = page.locator("#simulations tbody tr")
    until(lambda: rows.count() == 2, 60, "two simulations in the list", page)

    # the other tab got both rows without reloading, then follows a tag added elsewhere
    live_rows = watcher.locator("#simulations tbody tr")
    until(lambda: live_rows.count() == 2, 30, "new runs to appear on the open list", watcher)
    assert watcher.evaluate("window.__sameDocument") is True, "the list reloaded"
    assert "No runs yet" not in watcher.content()
    sims = page.request.get(f"{base}/api/simulations?sort=name").json()
    assert len(sims) == 2
    first, second = sims[0], sims[1]
    assert first["name"] in _row_text(watcher, first["id"])
    _api(page, base, "POST", f"/api/simulations/{first['id']}/tags", data={"tag": "live-tag"})
    until(
        lambda: "live-tag" in _row_text(watcher, first["id"]), 30, "the new tag on the row", watcher
    )
    assert watcher.evaluate("window.__sameDocument") is True
    shot(watcher, "03-list-live")
    watcher.close()

    # the list goes live without reload: a row leaves "queued" by WebSocket
    until(
        lambda: any(
            s in ("starting", "running", "finished")
            for s in page.locator("#simulations [data-role=status]").all_inner_texts()
        ),
        240,
        "a row's status to change live",
        page,
    )
    shot(page, "03-list")

    # watch the chart grow live
    page.goto(f"{base}/simulations/{first['id']}/")
    until(lambda: _points(page) >= 8, 300, "the chart to reach two logged epochs", page)
    start = _points(page)
    until(
        lambda: _points(page) >= start + 8,
        240,
        "the chart to grow by two epochs over the socket",
        page,
    )
    shot(page, "04-general-live")

    # pause, then resume
    until(lambda: _badge(page) == "running", 120, "the run to be running", page)
    page.click("#sim-toolbar [data-action=pause]")
    until(lambda: _badge(page) == "paused", 180, "the badge to show paused", page)
    held = _points(page)
    page.wait_for_timeout(4000)
    assert _points(page) <= held + 4, "the chart kept growing while paused"
    shot(page, "05-paused")
    page.click("#sim-toolbar [data-action=resume]")
    until(
        lambda: _badge(page) in ("running", "finished"),
        180,
        "the badge to show running again",
        page,
    )
    resumed = _points(page)
    until(
        lambda: _points(page) > resumed or _badge(page) == "finished",
        240,
        "growth after resume",
        page,
    )

    # graphs
    page.click("[role=tab][data-tab=graphs]")
    until(
        lambda: page.locator("#curve-grid .main-svg").count() > 0,
        60,
        "#curve-grid .main-svg",
        page,
    )
    until(
        lambda: page.locator("#heat-kernel .main-svg").count() > 0,
        120,
        "#heat-kernel .main-svg",
        page,
    )
    page.locator("#scatter3d").scroll_into_view_if_needed()  # drawn once scrolled into view
    until(
        lambda: page.locator("#scatter3d .main-svg").count() > 0,
        120,
        "#scatter3d .main-svg",
        page,
    )
    until(
        lambda: page.locator("#grad-norm .main-svg").count() > 0,
        60,
        "#grad-norm .main-svg",
        page,
    )
    shot(page, "06-graphs")
    webgl = page.evaluate("document.querySelectorAll('canvas').length")
    assert webgl <= 4, f"{webgl} canvases on the page"

    # compare with the other run, and the tag group
    page.click("[role=tab][data-tab=comparisons]")
    page.select_option("#other-select", second["id"])
    until(
        lambda: int(page.locator("#diff-chart").get_attribute("data-points") or 0) > 0,
        180,
        "the difference chart to have common epochs",
        page,
    )
    until(
        lambda: int(page.locator("#agg-chart").get_attribute("data-points") or 0) > 0,
        120,
        "the tag group band",
        page,
    )
    shot(page, "07-comparisons")

    # download and open the zips: the summary, every value in float16, the trained model
    page.click("[role=tab][data-tab=download]")
    until(
        lambda: "≈" in page.locator("#download-button").inner_text(),
        30,
        "the summary's size on its button",
        page,
    )
    shot(page, "08-download")
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-button")
    path = tmp_path / "export.zip"
    info.value.save_as(str(path))
    with zipfile.ZipFile(path) as zf:
        epochs = list(csv.DictReader(io.StringIO(zf.read("epochs.csv").decode())))
        assert epochs and "epoch" in epochs[0] and "loss" in epochs[0]
        assert [int(r["epoch"]) for r in epochs] == sorted(int(r["epoch"]) for r in epochs)
        assert len(epochs) >= 4
        stats = list(csv.DictReader(io.StringIO(zf.read("tensor_stats.csv").decode())))
        assert {"kernel", "bias", "gradient", "activation"} <= {r["kind"] for r in stats}
        hists = np.load(io.BytesIO(zf.read("histograms.npz")))
        assert hists["kernel.hidden.kernel.counts"].shape[1] == 32
        assert "kernels.npz" not in zf.namelist()
        assert json.loads(zf.read("config.json"))["simulation"]["id"] == first["id"]
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-full16")
    path = tmp_path / "export-full16.zip"
    info.value.save_as(str(path))
    with zipfile.ZipFile(path) as zf:
        kernels = np.load(io.BytesIO(zf.read("kernels.npz")))
        biases = np.load(io.BytesIO(zf.read("biases.npz")))
        assert kernels["hidden.kernel"].shape[1:] == (64, 128)
        assert kernels["hidden.kernel"].dtype == np.float16
        assert biases["hidden.bias"].shape[1:] == (128,)
    until(lambda: _badge(page) == "finished", 600, "the run to finish", page)
    until(  # the tab asks for the sizes again each time: the model's link shows once kept
        lambda: (
            page.click("[role=tab][data-tab=download]")
            or page.locator("#download-model").is_visible()
        ),
        120,
        "the trained model's link",
        page,
    )
    with page.expect_download(timeout=120_000) as info:
        page.click("#download-model")
    assert info.value.suggested_filename.endswith(".keras")
    path = tmp_path / "model.keras"
    info.value.save_as(str(path))
    with zipfile.ZipFile(path) as zf:  # the Keras 3 format: keras.saving.load_model reads it
        assert {"config.json", "metadata.json", "model.weights.h5"} <= set(zf.namelist())
        assert json.loads(zf.read("config.json"))["class_name"] == "Sequential"

    # the list again, after everything, and the account page
    page.goto(f"{base}/simulations/")
    shot(page, "09-list-after")
    page.goto(f"{base}/accounts/")
    assert user in page.locator("h1 + p").inner_text()
    shot(page, "10-account")

    # log out, and back in with the form
    page.click("details.usermenu summary")
    page.click("details.usermenu button[type=submit]")
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("form.form button[type=submit]")
    page.wait_for_url(re.compile(r"/simulations/$"), timeout=30_000)

    # an administrator: the console, this user's page, and the list of every user's runs
    admin, admin_password = _ensure_admin(stack)
    staff = page.context.browser.new_context(viewport={"width": 1366, "height": 768})
    console = staff.new_page()
    console.goto(f"{base}/accounts/login/")
    console.fill("input[name=username]", admin)
    console.fill("input[name=password]", admin_password)
    console.click("form.form button[type=submit]")
    console.wait_for_url(re.compile(r"/simulations/$"), timeout=30_000)
    until(
        lambda: first["id"] in console.content(), 30, "the user's runs on the staff list", console
    )
    shot(console, "11-staff-list")
    console.goto(f"{base}/console/")
    assert user in console.content()
    shot(console, "12-console-users")
    console.locator("a[href^='/console/users/']", has_text=user).first.click()
    console.wait_for_url(re.compile(r"/console/users/\d+/$"))
    assert first["name"] in console.content()
    shot(console, "13-console-user")
    staff.close()
