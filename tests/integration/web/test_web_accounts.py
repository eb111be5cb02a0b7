"""Account pages and token API against real PostgreSQL: register, log in and out, rename,
change password, the failed-login lockout, and token list/revoke; the same account actions
over the REST API with the same validation and throttles."""

from __future__ import annotations

import json
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


# ---- the same account actions over the REST API (same forms, same throttles) ----------------


def _json(client: Any, method: str, url: str, body: dict[str, Any], **extra: Any) -> Any:
    return client.generic(method, url, json.dumps(body), content_type="application/json", **extra)


def _bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def _api_token(client: Any, user: Any, password: str = PASSWORD) -> str:
    body = {"username": user.get_username(), "password": password}
    resp = _json(client, "POST", "/api/tokens", body)
    assert resp.status_code == 201, resp.content
    return resp.json()["token"]


def test_it_registers_over_the_api_and_returns_a_working_token(client: Any) -> None:
    name = f"api{uuid.uuid4().hex[:8]}"
    resp = _json(
        client,
        "POST",
        "/api/accounts",
        {"username": name, "password": "Zebra-Quartz-91"},
        REMOTE_ADDR="10.9.0.1",
    )
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert body["username"] == name and body["is_staff"] is False
    me = client.get("/api/accounts/me", **_bearer(body["token"]))
    assert me.status_code == 200 and me.json()["username"] == name


def test_it_validates_api_registrations_like_the_page(client: Any, make_user: Any) -> None:
    taken = make_user().get_username()
    cases = {
        "username": {"username": taken, "password": "Zebra-Quartz-91"},
        "password": {"username": f"w{uuid.uuid4().hex[:8]}", "password": "123"},
    }
    for field, body in cases.items():
        resp = _json(client, "POST", "/api/accounts", body, REMOTE_ADDR="10.9.0.2")
        assert resp.status_code == 422, resp.content
        errors = resp.json()["errors"]
        assert list(errors) == [field], errors
    bad_name = _json(
        client,
        "POST",
        "/api/accounts",
        {"username": "no spaces; please", "password": "Zebra-Quartz-91"},
    )
    assert "username" in bad_name.json()["errors"]
    common = _json(
        client,
        "POST",
        "/api/accounts",
        {"username": f"c{uuid.uuid4().hex[:8]}", "password": "password"},
    )
    assert "too common" in common.json()["errors"]["password"]


def test_it_limits_sign_ups_per_address_on_the_page_and_the_api(client: Any) -> None:
    from django.test import Client, override_settings

    ip = f"10.9.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    with override_settings(NNT_REGISTER_MAX_PER_IP=2):
        for n in range(2):
            body = {"username": f"s{n}{uuid.uuid4().hex[:8]}", "password": "Zebra-Quartz-91"}
            assert _json(client, "POST", "/api/accounts", body, REMOTE_ADDR=ip).status_code == 201
        body = {"username": f"s{uuid.uuid4().hex[:8]}", "password": "Zebra-Quartz-91"}
        refused = _json(client, "POST", "/api/accounts", body, REMOTE_ADDR=ip)
        assert refused.status_code == 429
        assert "Too many accounts were created from your address" in refused.json()["detail"]
        browser = Client(enforce_csrf_checks=True)
        page = _post(
            browser,
            "/accounts/register/",
            {
                "username": body["username"],
                "password1": "Zebra-Quartz-91",
                "password2": "Zebra-Quartz-91",
            },
            page="/accounts/register/",
            REMOTE_ADDR=ip,
        )
        assert page.status_code == 200 and "Too many accounts" in page.content.decode()
        other = _json(client, "POST", "/api/accounts", body, REMOTE_ADDR="10.8.8.8")
        assert other.status_code == 201  # another address is not limited
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(username=body["username"]).count() == 1


def test_it_changes_the_password_over_the_api(client: Any, make_user: Any) -> None:
    user = make_user()
    auth = _bearer(_api_token(client, user))
    url = "/api/accounts/me/password"
    weak = _json(client, "POST", url, {"old_password": PASSWORD, "new_password": "abc"}, **auth)
    assert weak.status_code == 422 and list(weak.json()["errors"]) == ["new_password"]
    wrong = _json(
        client, "POST", url, {"old_password": "nope", "new_password": "Quartz-Zebra-77"}, **auth
    )
    assert wrong.status_code == 422
    assert "old password was entered incorrectly" in wrong.json()["errors"]["old_password"]
    ok = _json(
        client, "POST", url, {"old_password": PASSWORD, "new_password": "Quartz-Zebra-77"}, **auth
    )
    assert ok.status_code == 204
    user.refresh_from_db()
    assert user.check_password("Quartz-Zebra-77")
    assert (
        _json(
            client, "POST", "/api/tokens", {"username": user.get_username(), "password": PASSWORD}
        ).status_code
        == 401
    )


def test_it_changes_the_username_over_the_api(client: Any, make_user: Any) -> None:
    from web.simulations.models import Simulation

    user, other = make_user(), make_user()
    sim = Simulation.objects.create(owner=user, owner_name=user.get_username(), name="mine")
    auth = _bearer(_api_token(client, user))
    url = "/api/accounts/me/username"
    taken = _json(
        client,
        "POST",
        url,
        {"username": other.get_username().upper(), "password": PASSWORD},
        **auth,
    )
    assert taken.status_code == 422 and "taken" in taken.json()["errors"]["username"]
    wrong = _json(client, "POST", url, {"username": "fresh-name", "password": "x"}, **auth)
    assert wrong.status_code == 422 and wrong.json()["errors"] == {"password": "Wrong password."}
    new = f"renamed{uuid.uuid4().hex[:6]}"
    ok = _json(client, "POST", url, {"username": new, "password": PASSWORD}, **auth)
    assert ok.status_code == 200 and ok.json()["username"] == new
    sim.refresh_from_db()
    assert sim.owner_name == new
    assert client.get("/api/simulations", **auth).json()[0]["owner"] == new


def test_it_locks_out_password_guesses_on_account_changes(client: Any, make_user: Any) -> None:
    """A stolen token or session must not become a password oracle: wrong current passwords
    count like failed logins, over the API and on the account page."""
    from django.test import Client

    user = make_user()
    ip = "10.7.7.7"
    auth = _bearer(_api_token(client, user))
    body = {"old_password": "guess", "new_password": "Quartz-Zebra-77"}
    for _ in range(5):
        resp = _json(client, "POST", "/api/accounts/me/password", body, REMOTE_ADDR=ip, **auth)
        assert resp.status_code == 422
    body["old_password"] = PASSWORD  # the right one, still refused from this address
    resp = _json(client, "POST", "/api/accounts/me/password", body, REMOTE_ADDR=ip, **auth)
    assert resp.status_code == 429 and "Too many failed logins" in resp.json()["detail"]
    rename = _json(
        client,
        "POST",
        "/api/accounts/me/username",
        {"username": "x" + uuid.uuid4().hex[:6], "password": PASSWORD},
        REMOTE_ADDR=ip,
        **auth,
    )
    assert rename.status_code == 429
    client.force_login(user)
    page = _post(
        client,
        "/accounts/username/",
        {"username": "y" + uuid.uuid4().hex[:6], "password": PASSWORD},
        page="/accounts/",
        REMOTE_ADDR=ip,
    )
    assert page.status_code == 400 and "Too many failed logins" in page.content.decode()
    login = _login(Client(enforce_csrf_checks=True), user.get_username(), PASSWORD, ip=ip)
    assert login.status_code == 200 and "Too many failed logins" in login.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)
