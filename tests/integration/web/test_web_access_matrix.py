"""The complete access matrix: every page, API operation and WebSocket route, for every actor.

Routes are enumerated from the running configuration (Django's URL resolver, the API's OpenAPI
paths, the Channels routing), so a new route without an entry in PAGES, API or SOCKETS fails
test_it_has_a_matrix_entry_for_every_route. Each entry says who may use the route:

    PUBLIC  anyone;
    USER    a signed-in user (anonymous: pages redirect to login, the API answers 401);
    OWNER   a signed-in user, on their own object only (another user's: 404, never 403, so
            that ids cannot be probed; staff may read every simulation);
    STAFF   administrators only (others: 403; anonymous as for USER).

Every state-changing browser request (a session, no CSRF token) is refused with 403. Django's
own /admin/ sends everyone but staff to its login page. Feature tests (test_web_api.py,
test_web_console.py, test_web_live_subscriptions.py) go deeper on single routes; this file is
the one place that proves every cell.
"""

from __future__ import annotations

import asyncio
import functools
import io
import json
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest

PASSWORD = "pw-long-enough-1"
PUBLIC, USER, OWNER, STAFF = "public", "user", "owner", "staff"
SAFE = ("GET", "HEAD")


@dataclass(frozen=True)
class Page:
    """A page: who may use it, whether it answers GET, and the form its POST takes."""

    access: str
    get: bool = True
    post: dict[str, str] | None = None


PAGES: dict[str, Page] = {
    "home": Page(PUBLIC),
    "login": Page(PUBLIC, post={"username": "nobody", "password": "wrong"}),
    "logout": Page(PUBLIC, get=False, post={}),
    "register": Page(PUBLIC, post={"username": "", "password1": "", "password2": ""}),
    "plotly_js": Page(PUBLIC),
    "static_file": Page(PUBLIC),
    "account": Page(USER),
    "change_username": Page(USER, post={"username": "", "password": ""}),
    "change_password": Page(USER, post={"old_password": "", "new_password1": ""}),
    "change_alerts": Page(USER, post={"diagnoses": "all"}),
    "create_token": Page(USER, get=False, post={"name": "matrix"}),
    "revoke_token": Page(OWNER, get=False, post={}),
    "simulations:list": Page(USER),
    "simulations:detail": Page(OWNER),
    "simulations:overlay": Page(USER),
    "simulations:grid": Page(USER),
    "experiments:new": Page(USER, post={"mode": "json", "config_json": "{}"}),
    "console:users": Page(STAFF),
    "console:user": Page(STAFF),
    "console:set_staff": Page(STAFF, get=False, post={"staff": "1"}),
    "console:set_active": Page(STAFF, get=False, post={"active": "0"}),
    "console:delete": Page(STAFF, post={}),
    "console:set_quota": Page(STAFF, get=False, post={"max_concurrent_runs": "999"}),
}


@dataclass(frozen=True)
class Api:
    """An API operation: who may call it and a request that passes validation."""

    access: str
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, Any] | None = None


API: dict[tuple[str, str], Api] = {
    ("POST", "/api/tokens"): Api(PUBLIC, body={"username": "{ada}", "password": PASSWORD}),
    ("POST", "/api/accounts"): Api(PUBLIC, body={"username": "{new}", "password": "Zebra-91-q"}),
    ("GET", "/api/tokens"): Api(USER),
    ("DELETE", "/api/tokens/{token_id}"): Api(OWNER),
    ("GET", "/api/accounts/me"): Api(USER),
    ("GET", "/api/accounts/me/alerts"): Api(USER),
    ("PUT", "/api/accounts/me/alerts"): Api(USER, body={"diagnoses": "fatal"}),
    ("POST", "/api/accounts/me/username"): Api(USER, body={"username": "x", "password": "no"}),
    ("POST", "/api/accounts/me/password"): Api(
        USER, body={"old_password": "no", "new_password": "Zebra-91-q"}
    ),
    ("GET", "/api/command-key"): Api(USER),
    ("POST", "/api/command-key/rotate"): Api(USER),
    ("POST", "/api/experiments"): Api(USER),
    ("POST", "/api/experiments/preview"): Api(USER, body={}),
    ("GET", "/api/experiments/{experiment_id}"): Api(OWNER),
    ("POST", "/api/sdk-runs"): Api(USER, body={"name": "matrix run"}),
    ("GET", "/api/simulations"): Api(USER),
    ("GET", "/api/simulations/columns"): Api(USER),
    ("POST", "/api/simulations/bulk"): Api(OWNER, body={"ids": ["{sim}"], "action": "pause"}),
    ("GET", "/api/simulations/{simulation_id}"): Api(OWNER),
    ("DELETE", "/api/simulations/{simulation_id}"): Api(OWNER),
    ("POST", "/api/simulations/{simulation_id}/pause"): Api(OWNER),
    ("POST", "/api/simulations/{simulation_id}/resume"): Api(OWNER),
    ("POST", "/api/simulations/{simulation_id}/stop"): Api(OWNER),
    ("POST", "/api/simulations/{simulation_id}/tags"): Api(OWNER, body={"tag": "stolen"}),
    ("DELETE", "/api/simulations/{simulation_id}/tags"): Api(OWNER, body={"tag": "bobs"}),
    ("GET", "/api/simulations/{simulation_id}/metrics"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/summary"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/tensors"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/tensors/values"): Api(OWNER, {"key": "d.kernel"}),
    ("GET", "/api/simulations/{simulation_id}/compare"): Api(OWNER, {"other": "{mine}"}),
    ("GET", "/api/simulations/{simulation_id}/export"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/export/estimate"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/model"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/batches"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/resources"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/timeline"): Api(OWNER),
    ("GET", "/api/simulations/{simulation_id}/diagnoses"): Api(OWNER),
    ("GET", "/api/alerts"): Api(USER, {"since": "2020-01-01T00:00:00Z"}),
    ("GET", "/api/tags"): Api(USER),
    ("GET", "/api/tags/aggregates"): Api(USER, {"tag": "bobs"}),
    ("GET", "/api/admin/users"): Api(STAFF),
    ("GET", "/api/admin/users/{user_id}"): Api(STAFF),
    ("PATCH", "/api/admin/users/{user_id}"): Api(STAFF, body={"is_staff": True}),
    ("DELETE", "/api/admin/users/{user_id}"): Api(STAFF),
    ("GET", "/api/admin/users/{user_id}/quota"): Api(STAFF),
    ("PUT", "/api/admin/users/{user_id}/quota"): Api(STAFF, body={"max_concurrent_runs": 99}),
    ("GET", "/api/admin/users/{user_id}/simulations"): Api(STAFF),
}
API_DOCS = ("/api/docs", "/api/openapi.json")  # public, like the schema they describe

SOCKETS = {
    "ws/simulations/": USER,
    "ws/simulations/<uuid:simulation_id>/": OWNER,
    "ws/alerts/": USER,
}


@dataclass
class World:
    """ada acts; bob owns what she must not touch; admin is staff; target is acted upon."""

    ada: Any
    bob: Any
    admin: Any
    target: Any
    mine: Any
    theirs: Any
    bob_token: Any
    ada_token: str
    admin_token: str

    def values(self, own: bool) -> dict[str, str]:
        """What fills the route's parameters: bob's objects, or (own=True) ada's."""
        sim = self.mine if own else self.theirs
        return {
            "simulation_id": str(sim.id),
            "experiment_id": str(sim.experiment_id),
            "sim": str(sim.id),
            "mine": str(self.mine.id),
            "token_id": str(self.bob_token.pk),
            "user_id": str(self.target.pk),
            "object_id": str(self.target.pk),
            "id": str(self.target.pk),
            "content_type_id": "1",
            "app_label": "auth",
            "url": "nothing-here",
            "path": "web/app.css",
            "ada": self.ada.get_username(),
            "new": f"m{uuid.uuid4().hex[:10]}",
        }


@functools.cache
def password_hash() -> str:
    """PASSWORD hashed once: each test makes four users, and hashing is slow on purpose."""
    from django.contrib.auth.hashers import make_password

    return str(make_password(PASSWORD))


def user(staff: bool = False) -> Any:
    from django.contrib.auth import get_user_model

    name = f"m{uuid.uuid4().hex[:10]}"
    return get_user_model().objects.create(username=name, password=password_hash(), is_staff=staff)


@pytest.fixture()
def world(django_ready: Any) -> World:
    from web.accounts.models import ApiToken
    from web.simulations.models import Experiment, Simulation

    ada, bob, admin, target = user(), user(), user(staff=True), user()

    def sim(owner: Any) -> Any:
        experiment = Experiment.objects.create(owner=owner, name="e")
        return Simulation.objects.create(
            owner=owner, owner_name=owner.get_username(), name="m", status="running",
            total_epochs=4, tags=["bobs"] if owner is bob else ["adas"], experiment=experiment,
        )  # fmt: skip

    bob_token, _ = ApiToken.issue(bob, name="bobs")
    return World(
        ada, bob, admin, target, sim(ada), sim(bob), bob_token,
        ApiToken.issue(ada)[1], ApiToken.issue(admin)[1],
    )  # fmt: skip


def fill(template: str, values: dict[str, str]) -> str:
    """A concrete URL from a route (`<conv:name>`, `{name}`, `(?P<name>…)`) or a template."""
    url = re.sub(r"\(\?P<(\w+)>[^)]*\)", lambda m: values[m[1]], template)
    url = re.sub(r"<(?:\w+:)?(\w+)>|\{(\w+)\}", lambda m: values[m[1] or m[2]], url)
    return "/" + url.strip("^$").lstrip("/")


def fill_all(data: Any, values: dict[str, str]) -> Any:
    """`{name}` placeholders filled in a request body or query."""
    return json.loads(re.sub(r"\{(\w+)\}", lambda m: values[m[1]], json.dumps(data)))


def routes() -> tuple[dict[str, str], dict[str, str]]:
    """Every Django route by name: (pages, Django admin); the API's are in its OpenAPI."""
    from django.urls import URLPattern, URLResolver, get_resolver

    pages, admin = {}, {}

    def walk(patterns: list[Any], prefix: str, ns: str | None) -> None:
        for p in patterns:
            if isinstance(p, URLResolver):
                walk(p.url_patterns, prefix + str(p.pattern), p.namespace or ns)
            elif isinstance(p, URLPattern) and ns != "api":
                route = prefix + str(p.pattern)
                if ns == "admin":
                    admin[p.name or route] = route
                else:
                    pages[f"{ns}:{p.name}" if ns else str(p.name)] = route

    walk(get_resolver().url_patterns, "", None)
    return pages, admin


def operations(client: Any) -> set[tuple[str, str]]:
    paths = client.get("/api/openapi.json").json()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() for m in ops}


def csrf_token(client: Any) -> str:
    """The CSRF cookie a page of the client's session sets (what a browser's form would send)."""
    client.get("/accounts/login/")
    client.get("/accounts/")
    return str(client.cookies["csrftoken"].value)


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def call(
    client: Any, method: str, path: str, spec: Api, values: dict[str, str], **extra: Any
) -> Any:
    url = fill(path, values)
    if spec.query:
        url += "?" + urlencode(fill_all(spec.query, values))
    if spec.body is not None:
        extra |= {
            "data": json.dumps(fill_all(spec.body, values)),
            "content_type": "application/json",
        }
    return client.generic(method, url, **extra)


def text_of(resp: Any) -> str:
    """A response's text; a zip download's members, unpacked, so nothing hides in it."""
    data = b"".join(resp.streaming_content) if resp.streaming else resp.content
    if data.startswith(b"PK"):
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            data = b"\n".join(zf.read(name) for name in zf.namelist())
    return data.decode(errors="replace")


def bobs_things_untouched(world: World) -> None:
    from web.accounts.models import ApiToken

    world.theirs.refresh_from_db()
    assert world.theirs.status == "running" and world.theirs.tags == ["bobs"]
    assert ApiToken.objects.filter(pk=world.bob_token.pk).exists()
    world.target.refresh_from_db()
    assert not world.target.is_staff and world.target.is_active


# --- every route has an entry -----------------------------------------------------------


def test_it_has_a_matrix_entry_for_every_route(client: Any) -> None:
    from web.live.routing import websocket_urlpatterns

    pages, _ = routes()
    assert set(pages) == set(PAGES), "a new page: add it to PAGES"
    assert operations(client) == set(API), "a new API operation: add it to API"
    assert {str(p.pattern) for p in websocket_urlpatterns} == set(SOCKETS), "add it to SOCKETS"


# --- pages ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PAGES))
def test_pages_for_anonymous_visitors(client: Any, world: World, name: str) -> None:
    page, url = PAGES[name], fill(routes()[0][name], world.values(own=False))
    token = csrf_token(client)
    answers = []
    if page.get:
        answers.append(client.get(url))
    if page.post is not None:
        answers.append(client.post(url, page.post | {"csrfmiddlewaretoken": token}))
    for resp in answers:
        if page.access == PUBLIC:
            assert resp.status_code in (200, 302), (url, resp.status_code)
            assert not resp.get("Location", "").startswith("/accounts/login/")
        else:
            assert resp.status_code == 302, (url, resp.status_code)
            assert resp["Location"].startswith("/accounts/login/?next="), resp["Location"]
    if not page.get:
        assert client.get(url).status_code in (302, 405)  # never the action itself
    bobs_things_untouched(world)


@pytest.mark.parametrize("name", sorted(n for n, p in PAGES.items() if p.access == OWNER))
def test_pages_answer_404_for_another_users_object(client: Any, world: World, name: str) -> None:
    page, url = PAGES[name], fill(routes()[0][name], world.values(own=False))
    client.force_login(world.ada)
    token = csrf_token(client)
    if page.get:
        assert client.get(url).status_code == 404
    if page.post is not None:
        assert client.post(url, page.post | {"csrfmiddlewaretoken": token}).status_code == 404
    bobs_things_untouched(world)


@pytest.mark.parametrize("name", sorted(n for n, p in PAGES.items() if p.access == STAFF))
def test_pages_answer_403_to_non_staff_on_admin_pages(client: Any, world: World, name: str) -> None:
    page, url = PAGES[name], fill(routes()[0][name], world.values(own=False))
    client.force_login(world.ada)
    token = csrf_token(client)
    assert client.get(url).status_code in ((403,) if page.get else (403, 405))
    if page.post is not None:
        assert client.post(url, page.post | {"csrfmiddlewaretoken": token}).status_code == 403
    bobs_things_untouched(world)


@pytest.mark.parametrize("name", sorted(n for n, p in PAGES.items() if p.post is not None))
def test_pages_refuse_every_post_without_a_csrf_token(client: Any, world: World, name: str) -> None:
    page, url = PAGES[name], fill(routes()[0][name], world.values(own=True))
    if page.access != PUBLIC:
        client.force_login(world.admin if page.access == STAFF else world.ada)
    csrf_token(client)  # the cookie is there; the form field is not
    assert client.post(url, page.post).status_code == 403
    bobs_things_untouched(world)


def test_pages_answer_404_for_ids_that_do_not_exist(client: Any, world: World) -> None:
    client.force_login(world.admin)
    token = csrf_token(client)
    assert client.get(f"/simulations/{uuid.uuid4()}/").status_code == 404
    assert client.get(f"/console/users/{10**20}/").status_code == 404
    revoke = client.post(f"/accounts/tokens/{10**20}/revoke/", {"csrfmiddlewaretoken": token})
    assert revoke.status_code == 404
    assert client.get("/static/web/../../settings.py").status_code == 404
    assert client.get("/static/..%2f..%2fsettings.py").status_code == 404


def test_django_admin_sends_everyone_but_staff_to_its_login(client: Any, world: World) -> None:
    _, admin = routes()
    assert {"index", "login", "logout"} <= set(admin)
    for who in (None, world.ada):
        if who is not None:
            client.force_login(who)
        for name, route in admin.items():
            url = fill(route, world.values(own=False))
            resp = client.get(url)
            if name == "login":
                assert resp.status_code == 200
            elif name == "logout":
                assert resp.status_code in (302, 405)
            else:
                assert resp.status_code == 302 and resp["Location"].startswith("/admin/login/")
    client.force_login(world.admin)
    assert client.get("/admin/").status_code == 200


# --- the API ----------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path"), sorted(API))
def test_api_for_anonymous_callers(client: Any, world: World, method: str, path: str) -> None:
    spec = API[(method, path)]
    extra = {} if method in SAFE else {"HTTP_X_CSRFTOKEN": csrf_token(client)}
    resp = call(client, method, path, spec, world.values(own=False), **extra)
    if spec.access == PUBLIC:
        assert resp.status_code not in (401, 403), resp.content
    else:
        assert resp.status_code == 401, resp.content
    bobs_things_untouched(world)


def test_api_docs_are_public(client: Any) -> None:
    for url in API_DOCS:
        assert client.get(url).status_code == 200


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in API.items() if v.access == OWNER))
def test_api_answers_404_for_another_users_object(
    client: Any, world: World, method: str, path: str
) -> None:
    resp = call(client, method, path, API[(method, path)], world.values(own=False),
                **bearer(world.ada_token))  # fmt: skip
    assert resp.status_code == 404, resp.content
    assert str(world.theirs.id) not in resp.content.decode().replace(
        f"no simulation {world.theirs.id}", ""
    )
    bobs_things_untouched(world)


def test_api_answers_404_for_another_users_run_as_the_other_side_of_a_comparison(
    client: Any, world: World
) -> None:
    url = f"/api/simulations/{world.mine.id}/compare?other={world.theirs.id}"
    assert client.get(url, **bearer(world.ada_token)).status_code == 404


@pytest.mark.parametrize(("method", "path"), sorted(k for k, v in API.items() if v.access == STAFF))
def test_api_answers_403_to_non_staff_on_admin_operations(
    client: Any, world: World, method: str, path: str
) -> None:
    spec = API[(method, path)]
    resp = call(client, method, path, spec, world.values(own=False), **bearer(world.ada_token))
    assert resp.status_code == 403, resp.content
    if method in SAFE:
        staff = call(
            client, method, path, spec, world.values(own=False), **bearer(world.admin_token)
        )
        assert staff.status_code == 200, staff.content
    bobs_things_untouched(world)


@pytest.mark.parametrize(
    ("method", "path"),
    sorted(k for k, v in API.items() if k[0] in SAFE and v.access in (USER, OWNER)),
)
def test_api_reads_show_a_user_nothing_of_another_user(
    client: Any, world: World, method: str, path: str
) -> None:
    resp = call(client, method, path, API[(method, path)], world.values(own=True),
                **bearer(world.ada_token))  # fmt: skip
    assert resp.status_code in (200, 404), resp.content  # 404: nothing recorded yet
    body = text_of(resp)
    for secret in (str(world.theirs.id), world.bob.get_username(), '"bobs"'):
        assert secret not in body, f"{path} shows {secret}"
    staff = call(client, method, path, API[(method, path)], world.values(own=False),
                 **bearer(world.admin_token))  # fmt: skip
    assert staff.status_code != 403, "staff may read every simulation"


@pytest.mark.parametrize(
    ("method", "path"), sorted(k for k, v in API.items() if k[0] not in SAFE and v.access != PUBLIC)
)
def test_api_refuses_session_writes_without_a_csrf_token(
    client: Any, world: World, method: str, path: str
) -> None:
    from web.accounts.models import ApiToken

    spec, values = API[(method, path)], world.values(own=True)
    values["token_id"] = str(ApiToken.issue(world.ada, name="decoy")[0].pk)
    client.force_login(world.admin if spec.access == STAFF else world.ada)
    csrf = csrf_token(client)
    assert call(client, method, path, spec, values).status_code == 403
    with_token = call(client, method, path, spec, values, HTTP_X_CSRFTOKEN=csrf)
    assert with_token.status_code not in (401, 403), with_token.content  # so it was the CSRF


# --- WebSockets -------------------------------------------------------------------------


def _connect(path: str, session: str | None, origin: str = "http://testserver") -> bool:
    from channels.testing import WebsocketCommunicator

    from web.asgi import application

    headers = [(b"origin", origin.encode()), (b"host", b"testserver")]
    if session:
        headers.append((b"cookie", f"sessionid={session}".encode()))

    async def attempt() -> bool:
        comm = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await comm.connect(timeout=10)
        await comm.disconnect()
        return bool(connected)

    return asyncio.run(attempt())


def _session(user: Any) -> str:
    """A browser session of its own (logging another user in on one client ends the first)."""
    from django.test import Client

    browser = Client()
    browser.force_login(user)
    return str(browser.cookies["sessionid"].value)


@pytest.mark.parametrize("route", sorted(SOCKETS))
def test_sockets_for_every_actor(world: World, route: str) -> None:
    theirs, mine = (fill(route, world.values(own=own)) for own in (False, True))
    ada, admin = _session(world.ada), _session(world.admin)
    assert not _connect(mine, None), "anonymous"
    assert _connect(mine, ada), "the owner"
    assert not _connect(mine, ada, origin="https://evil.example"), "another site's page"
    if SOCKETS[route] == OWNER:
        assert not _connect(theirs, ada), "another user's run"
        assert _connect(theirs, admin), "staff see every run"


# --- production settings: what a browser actually receives -----------------------------

PRODUCTION_PROBE = """
import json, os, uuid
import django
django.setup()
from django.test.utils import setup_test_environment
setup_test_environment()
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

name = "p" + uuid.uuid4().hex[:10]
get_user_model().objects.create_user(name, password="pw-long-enough-1")
browser = Client(enforce_csrf_checks=True)
https = {"HTTP_X_FORWARDED_PROTO": "https", "SERVER_PORT": "443"}  # as the proxy forwards it
plain = browser.get("/accounts/login/")
page = browser.get("/accounts/login/", **https)
form = {"username": name, "password": "pw-long-enough-1",
        "csrfmiddlewaretoken": browser.cookies["csrftoken"].value}
evil = browser.post("/accounts/login/", form, HTTP_REFERER="https://evil.example/", **https)
login = browser.post(
    "/accounts/login/", form, HTTP_REFERER="https://testserver/accounts/login/", **https
)
flags = lambda morsel: {k: morsel[k] for k in ("secure", "httponly", "samesite")}
print(json.dumps({
    "plain": [plain.status_code, plain.get("Location")],
    "headers": {h: page.get(h) for h in ("Strict-Transport-Security", "X-Frame-Options",
        "X-Content-Type-Options", "Referrer-Policy", "Cross-Origin-Opener-Policy")},
    "login": [evil.status_code, login.status_code],
    "session": flags(login.cookies["sessionid"]),
    "csrf": flags(browser.cookies["csrftoken"]),
    "secret_from_env": settings.SECRET_KEY == os.environ["NNT_SECRET_KEY"],
    "debug": settings.DEBUG,
}))
"""


def test_production_settings_send_https_only_cookies_and_hsts(
    django_ready: Any, web_db_url: str, tmp_path: Any
) -> None:
    import os
    import secrets
    import subprocess
    import sys
    from pathlib import Path

    env = {k: v for k, v in os.environ.items() if not k.startswith(("NNT_", "DJANGO_"))}
    env |= {
        "DJANGO_SETTINGS_MODULE": "web.settings",
        "DATABASE_URL": web_db_url,
        "NNT_HOME": str(tmp_path),
        "NNT_HTTPS": "true",
        "NNT_ALLOWED_HOSTS": "nnt.example.org",
        "NNT_SECRET_KEY": secrets.token_urlsafe(50),
    }
    root = Path(__file__).resolve().parents[3]
    done = subprocess.run(
        [sys.executable, "-c", PRODUCTION_PROBE],
        cwd=root, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["plain"] == [301, "https://testserver/accounts/login/"]
    assert seen["headers"] == {
        "Strict-Transport-Security": "max-age=31536000; includeSubDomains; preload",
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    assert seen["login"] == [403, 302], "over HTTPS a form posted from another site is refused"
    assert seen["session"] == {"secure": True, "httponly": True, "samesite": "Lax"}
    assert seen["csrf"]["secure"] is True and seen["csrf"]["samesite"] == "Lax"
    assert seen["secret_from_env"] is True and seen["debug"] is False
