"""/api/docs works offline: Chromium, with every request beyond this server refused, draws the
API's operations from Swagger UI files the product serves itself (no CDN, no online validator)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Route, sync_playwright

from tests.e2e.stack import ROOT, launch_chromium

LOCAL = {"127.0.0.1", "localhost"}


def test_the_docs_page_names_no_other_host(client: Any) -> None:
    html = client.get("/api/docs").content.decode()
    hosts = {
        urlsplit(u).hostname for u in re.findall(r"""(?:src|href)=["'](https?://[^"']+)""", html)
    }
    assert hosts <= {"testserver"}, hosts
    assert "/static/ninja/swagger-ui-bundle.js" in html and "cdn" not in html.lower()
    assert client.get("/static/ninja/swagger-ui-bundle.js").status_code == 200
    assert client.get("/static/ninja/swagger-ui.css").status_code == 200


def test_it_renders_the_operations_with_no_network_beyond_the_server(live_web: Any) -> None:
    refused: list[str] = []

    def only_local(route: Route) -> None:
        url = route.request.url
        if urlsplit(url).hostname in LOCAL or url.startswith(("data:", "blob:")):
            route.continue_()
        else:
            refused.append(url)
            route.abort()

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.route("**/*", only_local)
            page.goto(f"{live_web.url}/api/docs")
            page.locator(".opblock").first.wait_for(timeout=60_000)
            operations = page.locator(".opblock").count()
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            (ROOT / "test-artifacts").mkdir(exist_ok=True)
            page.screenshot(path=str(ROOT / "test-artifacts" / "api-docs-offline.png"))
        finally:
            browser.close()
    assert operations >= 20, operations
    assert any("/api/simulations/{simulation_id}/pause" in p.replace("\u200b", "") for p in paths)
    assert refused == [], f"the docs asked other hosts: {refused}"
    assert errors == [], errors
