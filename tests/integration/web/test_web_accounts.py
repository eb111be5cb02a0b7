"""Account pages and token API against real PostgreSQL: register, log in and out, rename,
change password, the failed-login lockout, and token list/revoke."""

from __future__ import annotations

import re
import uuid
from typing import Any

PASSWORD = "pw-long-enough-1"


def _csrf(client: Any, page: str = "/accounts/login/") -> str:
    html = client.get(page).content.decode()
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]


def _post(
    client: Any, url: str, data: dict[str, Any], page: str = "/accounts/login/", **extra: Any
) -> Any:
    return client.post(url, data | {"csrfmiddlewaretoken": _csrf(client, page)}, **extra)


def _login(client: Any, username: str, password: str, ip: str = "127.0.0.1") -> Any:
    return _post(
        client, "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=ip
    )


def test_it_registers_logs_in_and_lands_on_the_create_form(client: Any) -> None:
    from django.contrib.auth import get_user_model

    name = f"reg{uuid.uuid4().hex[:8]}"
    resp = _post(
        client,
        "/accounts/register/",
        {"username": name, "password1": "Zebra-Quartz-91", "password2": "Zebra-Quartz-91"},
        page="/accounts/register/",
    )
    assert resp.status_code == 302 and resp["Location"] == "/experiments/new/"
    assert get_user_model().objects.filter(username=name).exists()
    assert client.get("/accounts/").status_code == 200  # logged in


def test_it_shows_registration_errors_beside_the_fields(client: Any) -> None:
    resp = _post(
        client,
        "/accounts/register/",
        {"username": "", "password1": "a", "password2": "b"},
        page="/accounts/register/",
    )
    html = resp.content.decode()
    assert resp.status_code == 200 and "This field is required" in html
    assert "didn’t match" in html or "didn't match" in html


def test_it_logs_in_and_out(client: Any, make_user: Any) -> None:
    user = make_user()
    resp = _login(client, user.get_username(), PASSWORD)
    assert resp.status_code == 302 and resp["Location"] == "/simulations/"
    html = client.get("/").content.decode()
    assert user.get_username() in html and "Log out" in html
    resp = _post(client, "/accounts/logout/", {}, page="/")
    assert resp.status_code == 302
    assert client.get("/accounts/").status_code == 302  # back to anonymous


def test_it_refuses_a_wrong_password_with_a_message(client: Any, make_user: Any) -> None:
    user = make_user()
    resp = _login(client, user.get_username(), "nope", ip="10.0.0.1")
    assert (
        resp.status_code == 200
        and "Please enter a correct username and password" in resp.content.decode()
    )


def test_it_locks_out_after_five_failures_per_username_and_ip(client: Any, make_user: Any) -> None:
    from web.accounts.models import LoginFailure

    user = make_user()
    name = user.get_username()
    for _ in range(5):
        assert _login(client, name, "wrong", ip="10.1.1.1").status_code == 200
    resp = _login(client, name, PASSWORD, ip="10.1.1.1")  # the right password, still refused
    html = resp.content.decode()
    assert (
        resp.status_code == 200
        and "Too many failed logins" in html
        and "Try again in 15 minutes" in html
    )
    assert LoginFailure.objects.filter(username=name.lower()).count() == 5
    # Another address is not locked out, and a success clears that pair's failures.
    assert _login(client, name, PASSWORD, ip="10.1.1.2").status_code == 302


def test_it_locks_the_token_endpoint_too(client: Any, make_user: Any) -> None:
    user = make_user()
    body = {"username": user.get_username(), "password": "wrong"}
    for _ in range(5):
        resp = client.post(
            "/api/tokens", body, content_type="application/json", REMOTE_ADDR="10.2.2.2"
        )
        assert resp.status_code == 401
    body["password"] = PASSWORD
    resp = client.post("/api/tokens", body, content_type="application/json", REMOTE_ADDR="10.2.2.2")
    assert resp.status_code == 429 and "Too many failed logins" in resp.json()["detail"]


def test_it_forgets_failures_older_than_the_window(client: Any, make_user: Any) -> None:
    from datetime import timedelta

    from django.utils import timezone

    from web.accounts.models import LoginFailure

    user = make_user()
    name = user.get_username()
    for _ in range(5):
        _login(client, name, "wrong", ip="10.3.3.3")
    LoginFailure.objects.filter(username=name.lower()).update(
        at=timezone.now() - timedelta(minutes=16)
    )
    assert _login(client, name, PASSWORD, ip="10.3.3.3").status_code == 302


def test_it_changes_the_password(client: Any, make_user: Any) -> None:
    user = make_user()
    client.force_login(user)
    bad = _post(
        client,
        "/accounts/password/",
        {
            "old_password": "nope",
            "new_password1": "Quartz-Zebra-77",
            "new_password2": "Quartz-Zebra-77",
        },
        page="/accounts/",
    )
    assert (
        bad.status_code == 400
        and "Your old password was entered incorrectly" in bad.content.decode()
    )
    ok = _post(
        client,
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "Quartz-Zebra-77",
            "new_password2": "Quartz-Zebra-77",
        },
        page="/accounts/",
    )
    assert ok.status_code == 302
    assert "Your password was changed" in client.get("/accounts/").content.decode()
    user.refresh_from_db()
    assert user.check_password("Quartz-Zebra-77")


def test_it_changes_the_username_and_the_runs_follow(client: Any, make_user: Any) -> None:
    from web.simulations.models import Simulation

    user, other = make_user(), make_user()
    sim = Simulation.objects.create(owner=user, owner_name=user.get_username(), name="mine")
    client.force_login(user)
    taken = _post(
        client,
        "/accounts/username/",
        {"username": other.get_username().upper(), "password": PASSWORD},
        page="/accounts/",
    )
    assert taken.status_code == 400 and "This username is taken" in taken.content.decode()
    wrong = _post(
        client,
        "/accounts/username/",
        {"username": "fresh-name", "password": "x"},
        page="/accounts/",
    )
    assert wrong.status_code == 400 and "Wrong password" in wrong.content.decode()
    new = f"renamed{uuid.uuid4().hex[:6]}"
    ok = _post(
        client, "/accounts/username/", {"username": new, "password": PASSWORD}, page="/accounts/"
    )
    assert ok.status_code == 302
    user.refresh_from_db()
    sim.refresh_from_db()
    assert user.get_username() == new and sim.owner_name == new


def test_it_refuses_state_changes_without_csrf(client: Any, make_user: Any) -> None:
    user = make_user()
    client.force_login(user)
    resp = client.post(
        "/accounts/password/",
        {
            "old_password": PASSWORD,
            "new_password1": "Quartz-Zebra-77",
            "new_password2": "Quartz-Zebra-77",
        },
    )
    assert resp.status_code == 403
    assert client.post("/accounts/tokens/", {"name": "x"}).status_code == 403


def test_it_issues_shows_once_and_revokes_tokens_in_the_page(client: Any, make_user: Any) -> None:
    from django.test import Client

    from web.accounts.models import ApiToken

    user = make_user()
    client.force_login(user)
    resp = _post(client, "/accounts/tokens/", {"name": "laptop"}, page="/accounts/")
    token = re.search(r'id="new-token">(nnt_[^<]+)<', resp.content.decode())[1]
    script = Client()  # no session: only the bearer token
    assert script.get("/api/tokens", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 200
    assert token not in client.get("/accounts/").content.decode()  # shown only once
    row = ApiToken.objects.get(user=user, name="laptop")
    assert (
        _post(client, f"/accounts/tokens/{row.pk}/revoke/", {}, page="/accounts/").status_code
        == 302
    )
    assert script.get("/api/tokens", HTTP_AUTHORIZATION=f"Bearer {token}").status_code == 401


def test_it_lists_and_revokes_tokens_over_the_api(client: Any, make_user: Any) -> None:
    user, other = make_user(), make_user()
    tokens = []
    for who in (user, user, other):
        resp = client.post(
            "/api/tokens",
            {"username": who.get_username(), "password": PASSWORD, "name": "script"},
            content_type="application/json",
        )
        tokens.append(resp.json()["token"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {tokens[0]}"}
    listed = client.get("/api/tokens", **auth).json()
    assert len(listed) == 2 and {t["prefix"] for t in listed} == {tokens[0][:12], tokens[1][:12]}
    assert all("token" not in t for t in listed)
    theirs = client.get("/api/tokens", HTTP_AUTHORIZATION=f"Bearer {tokens[2]}").json()[0]["id"]
    assert client.delete(f"/api/tokens/{theirs}", **auth).status_code == 404
    second = next(t["id"] for t in listed if t["prefix"] == tokens[1][:12])
    assert client.delete(f"/api/tokens/{second}", **auth).status_code == 204
    assert client.get("/api/tokens", HTTP_AUTHORIZATION=f"Bearer {tokens[1]}").status_code == 401
    assert client.get("/api/tokens").status_code == 401  # anonymous
