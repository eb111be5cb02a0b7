"""Admin console pages and /api/admin/ against real PostgreSQL (and real Kafka for deletes)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from tests.integration.web.conftest import record_run
from tests.streamworker import find_command

PASSWORD = "pw-long-enough-1"


def _post(client: Any, url: str, data: dict[str, Any], page: str = "/console/") -> Any:
    html = client.get(page).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)[1]
    return client.post(url, data | {"csrfmiddlewaretoken": token})


def _sim(owner: Any, status: str) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner,
        owner_name=owner.get_username(),
        status=status,
        name=f"console run {uuid.uuid4().hex[:6]}",
        total_epochs=10,
    )


def _token(client: Any, user: Any) -> dict[str, str]:
    resp = client.post(
        "/api/tokens",
        {"username": user.get_username(), "password": PASSWORD},
        content_type="application/json",
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['token']}"}


@pytest.fixture()
def admin(client: Any, make_user: Any) -> Any:
    user = make_user(staff=True)
    client.force_login(user)
    return user


def test_it_sends_anonymous_users_to_login(client: Any) -> None:
    resp = client.get("/console/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")


def test_it_forbids_non_staff_everywhere(client: Any, make_user: Any) -> None:
    user, other = make_user(), make_user()
    client.force_login(user)
    for url in ("/console/", f"/console/users/{other.pk}/", f"/console/users/{other.pk}/delete/"):
        assert client.get(url).status_code == 403, url
    auth = _token(client, user)
    client.logout()
    assert client.get("/api/admin/users", **auth).status_code == 403
    assert client.get(f"/api/admin/users/{other.pk}", **auth).status_code == 403
    assert (
        client.patch(
            f"/api/admin/users/{other.pk}",
            {"is_staff": True},
            content_type="application/json",
            **auth,
        ).status_code
        == 403
    )
    assert client.delete(f"/api/admin/users/{other.pk}", **auth).status_code == 403
    assert client.get("/api/admin/users").status_code == 401
    other.refresh_from_db()
    assert not other.is_staff


def test_it_lists_searches_filters_and_sorts_users(client: Any, admin: Any, make_user: Any) -> None:
    busy, idle = make_user(), make_user()
    idle.is_active = False
    idle.save()
    _sim(busy, "running")
    _sim(busy, "finished")
    html = client.get("/console/", {"q": busy.get_username()}).content.decode()
    assert busy.get_username() in html and idle.get_username() not in html
    html = client.get("/console/", {"active": "no", "q": idle.get_username()}).content.decode()
    assert idle.get_username() in html and "disabled" in html
    html = client.get("/console/", {"staff": "yes", "q": busy.get_username()}).content.decode()
    assert "No user matches" in html
    # Sorted among users of one search only: the shared test database has more users than a page.
    from django.contrib.auth import get_user_model

    prefix = f"sort{uuid.uuid4().hex[:8]}"
    few = get_user_model().objects.create_user(f"{prefix}-few", password="pw-long-enough-1")
    many = get_user_model().objects.create_user(f"{prefix}-many", password="pw-long-enough-1")
    _sim(many, "running")
    _sim(many, "finished")
    page = client.get("/console/", {"sort": "-simulations", "q": prefix}).content.decode()
    assert re.findall(r'data-user-id="(\d+)"', page) == [str(many.pk), str(few.pk)]


def test_it_grants_revokes_disables_and_enables(client: Any, admin: Any, make_user: Any) -> None:
    target = make_user()
    url = f"/console/users/{target.pk}"
    assert _post(client, f"{url}/staff/", {"staff": "1"}).status_code == 302
    target.refresh_from_db()
    assert target.is_staff
    _post(client, f"{url}/staff/", {"staff": "0"})
    _post(client, f"{url}/active/", {"active": "0"})
    target.refresh_from_db()
    assert not target.is_staff and not target.is_active
    from django.test import Client

    login = Client().post(
        "/accounts/login/", {"username": target.get_username(), "password": PASSWORD}
    )
    assert login.status_code == 200  # a disabled account cannot log in
    _post(client, f"{url}/active/", {"active": "1"})
    target.refresh_from_db()
    assert target.is_active


def test_it_never_acts_on_the_admin_themselves(client: Any, admin: Any) -> None:
    assert _post(client, f"/console/users/{admin.pk}/staff/", {"staff": "0"}).status_code == 403
    assert _post(client, f"/console/users/{admin.pk}/active/", {"active": "0"}).status_code == 403
    assert client.get(f"/console/users/{admin.pk}/delete/").status_code == 403
    admin.refresh_from_db()
    assert admin.is_staff and admin.is_active


def test_it_deletes_after_confirmation(client: Any, admin: Any, make_user: Any) -> None:
    from django.contrib.auth import get_user_model

    from web.simulations.models import Simulation

    target = make_user()
    sim = _sim(target, "finished")
    page = client.get(f"/console/users/{target.pk}/delete/")
    assert page.status_code == 200 and "cannot be undone" in page.content.decode()
    assert get_user_model().objects.filter(pk=target.pk).exists()  # GET alone deletes nothing
    resp = _post(
        client,
        f"/console/users/{target.pk}/delete/",
        {},
        page=f"/console/users/{target.pk}/delete/",
    )
    assert resp.status_code == 302 and resp["Location"] == "/console/"
    assert not get_user_model().objects.filter(pk=target.pk).exists()
    assert not Simulation.objects.filter(pk=sim.pk).exists()


def test_it_keeps_a_user_with_live_runs_when_kafka_is_down(
    client: Any, admin: Any, make_user: Any
) -> None:
    from django.contrib.auth import get_user_model

    target = make_user()
    _sim(target, "running")
    resp = _post(
        client,
        f"/console/users/{target.pk}/delete/",
        {},
        page=f"/console/users/{target.pk}/delete/",
    )
    assert resp.status_code == 302
    assert get_user_model().objects.filter(pk=target.pk).exists()
    assert "was not deleted" in client.get(f"/console/users/{target.pk}/").content.decode()


def test_it_tells_live_runs_to_delete_before_removing_the_user(
    client: Any, admin: Any, make_user: Any, real_kafka: str
) -> None:

    target = make_user()
    sim = _sim(target, "running")
    auth = _token(client, admin)
    assert client.delete(f"/api/admin/users/{target.pk}", **auth).status_code == 204
    found = find_command(real_kafka, str(sim.id))
    assert found is not None and found.type == "delete" and found.issued_by == admin.get_username()


def test_it_shows_counts_usage_and_simulations(client: Any, admin: Any, make_user: Any) -> None:
    target = make_user()
    running = [_sim(target, "running"), _sim(target, "running")]
    for status in ("finished", "finished", "failed", "queued", "deleted"):
        _sim(target, status)
    now = timezone.now()
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_resource VALUES (%s, %s, %s, %s, %s, %s, %s)",
            [
                (running[0].id, now - timedelta(seconds=30), 10.0, 1, None, None, None),
                (running[0].id, now, 50.0, 1_000_000_000, 4_000_000_000, 20.0, 500_000_000),
                (running[1].id, now, 25.5, 500_000_000, 4_000_000_000, None, None),
            ],
        )
    html = client.get(f"/console/users/{target.pk}/").content.decode()
    counts = {
        k: re.search(rf'id="count-{k}">(\d+)<', html)[1]
        for k in ("total", "running", "finished", "failed")
    }
    assert counts == {"total": "6", "running": "2", "finished": "2", "failed": "1"}
    assert 'id="usage-cpu">75.5%<' in html and "1.4\xa0GB" in html and "20.0%" in html
    assert running[0].name in html and f"/simulations/{running[0].id}/" in html
    body = client.get(f"/api/admin/users/{target.pk}").json()  # the session works for the API too
    assert body["counts"]["total"] == 6 and body["usage"]["cpu_percent"] == 75.5
    assert body["usage"]["memory_bytes"] == 1_500_000_000 and body["usage"]["gpu_percent"] == 20.0


def test_it_lets_admins_open_any_simulation(client: Any, admin: Any, make_user: Any) -> None:
    sim = _sim(make_user(), "running")
    assert client.get(f"/simulations/{sim.id}/").status_code == 200


def test_it_edits_quotas_with_defaults(client: Any, admin: Any, make_user: Any) -> None:
    from django.conf import settings

    target = make_user()
    html = client.get(f"/console/users/{target.pk}/").content.decode()
    assert (
        f"at most <b>{settings.NNT_QUOTA_MAX_CONCURRENT_RUNS}</b>" in html and "(default)" in html
    )
    bad = _post(client, f"/console/users/{target.pk}/quota/", {"max_concurrent_runs": "0"})
    assert bad.status_code == 400 and "greater than or equal to 1" in bad.content.decode()
    _post(
        client,
        f"/console/users/{target.pk}/quota/",
        {"max_concurrent_runs": "2", "max_memory_gib": "1.5", "max_epochs": "50"},
    )
    quota = client.get(f"/api/admin/users/{target.pk}/quota").json()
    assert quota == {
        "max_concurrent_runs": 2,
        "max_memory_bytes": int(1.5 * 1024**3),
        "custom_runs": True,
        "custom_memory": True,
        "max_queued_runs": None,
        "max_runs_per_experiment": None,
        "max_epochs": 50,
        "max_storage_bytes": None,
        "max_run_memory_bytes": None,
        "max_run_cpus": None,
    }
    from web.accounts.records import record_of  # what the orchestrators are sent

    sent = record_of(target).limits
    assert (sent.max_concurrent_runs, sent.max_epochs, sent.max_queued_runs) == (2, 50, None)
    put = client.put(
        f"/api/admin/users/{target.pk}/quota",
        {"max_concurrent_runs": None, "max_memory_bytes": 10, "max_runs_per_experiment": 4},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=client.cookies["csrftoken"].value,
    )
    assert put.status_code == 200
    assert put.json()["max_concurrent_runs"] == settings.NNT_QUOTA_MAX_CONCURRENT_RUNS
    assert put.json()["custom_runs"] is False and put.json()["max_memory_bytes"] == 10
    assert put.json()["max_runs_per_experiment"] == 4 and put.json()["max_epochs"] is None


def test_it_edits_the_per_run_and_storage_limits_and_shows_the_storage_in_use(
    client: Any, admin: Any, make_user: Any
) -> None:
    from django.conf import settings

    target = make_user()
    dataset = settings.DATASETS_DIR / f"{uuid.uuid4().hex}.csv"
    dataset.parent.mkdir(parents=True, exist_ok=True)
    dataset.write_bytes(b"x" * 3 * 1024**2)
    for _ in range(2):  # two runs of one dataset: counted once
        record_run(target.pk, {"train": str(dataset), "test": None})
    url = f"/console/users/{target.pk}/quota/"
    bad = _post(client, url, {"max_run_memory_gib": "0.01", "max_run_cpus": "0"})
    assert bad.status_code == 400 and "greater than or equal to 0.0625" in bad.content.decode()
    fields = {"max_run_memory_gib": "0.5", "max_run_cpus": "1.5", "max_storage_gib": "2"}
    _post(client, url, fields)
    quota = client.get(f"/api/admin/users/{target.pk}/quota").json()
    assert (quota["max_run_memory_bytes"], quota["max_run_cpus"]) == (512 * 1024**2, 1.5)
    assert quota["max_storage_bytes"] == 2 * 1024**3
    from web.accounts.records import record_of  # what the orchestrators are sent

    sent = record_of(target).limits
    assert (sent.max_run_memory_bytes, sent.max_run_cpus) == (512 * 1024**2, 1.5)
    assert sent.max_storage_bytes == 2 * 1024**3
    html = client.get(f"/console/users/{target.pk}/").content.decode()
    assert "<b>512.0\xa0MB</b> of memory per run" in html and "<b>1.5</b> CPUs per run" in html
    assert 'id="storage-used">3.0\xa0MB</b> of <b>2.0\xa0GB</b> (max_storage_bytes)' in html
    assert client.get(f"/api/admin/users/{target.pk}").json()["storage_bytes"] == 3 * 1024**2
    token = client.cookies["csrftoken"].value
    for body in ({"max_run_memory_bytes": 1024}, {"max_run_cpus": 0}, {"max_storage_bytes": -1}):
        put = client.put(f"/api/admin/users/{target.pk}/quota", body,
                         content_type="application/json", HTTP_X_CSRFTOKEN=token)  # fmt: skip
        assert put.status_code == 422, put.content
        assert list(put.json()["errors"]) == [f"body.{name}" for name in body], put.content
    assert record_of(target).limits.max_run_cpus == 1.5, "a refused change changes nothing"


def test_it_serves_the_admin_api(client: Any, make_user: Any) -> None:
    admin, target = make_user(staff=True), make_user()
    _sim(target, "running")
    auth = _token(client, admin)
    users = client.get("/api/admin/users", {"q": target.get_username()}, **auth).json()
    assert [u["username"] for u in users] == [target.get_username()] and users[0]["running"] == 1
    resp = client.patch(
        f"/api/admin/users/{target.pk}",
        {"is_staff": True, "is_active": False},
        content_type="application/json",
        **auth,
    )
    assert resp.status_code == 200 and resp.json()["is_staff"] and not resp.json()["is_active"]
    sims = client.get(f"/api/admin/users/{target.pk}/simulations", **auth).json()
    assert len(sims) == 1 and sims[0]["status"] == "running"
    assert (
        client.patch(
            f"/api/admin/users/{admin.pk}",
            {"is_active": False},
            content_type="application/json",
            **auth,
        ).status_code
        == 403
    )
    assert client.get("/api/admin/users/999999999", **auth).status_code == 404
    bad = client.put(
        f"/api/admin/users/{target.pk}/quota",
        {"max_concurrent_runs": 0},
        content_type="application/json",
        **auth,
    )
    assert bad.status_code == 422


# Every admin API operation and what it sends. A new /api/admin/ endpoint fails
# test_it_covers_every_admin_endpoint until it is added here (and so is checked for 403).
ADMIN_OPS: dict[tuple[str, str], dict[str, Any]] = {
    ("GET", "/api/admin/users"): {},
    ("GET", "/api/admin/users/{user_id}"): {},
    ("PATCH", "/api/admin/users/{user_id}"): {"is_staff": True, "is_active": False},
    ("DELETE", "/api/admin/users/{user_id}"): {},
    ("GET", "/api/admin/users/{user_id}/quota"): {},
    ("PUT", "/api/admin/users/{user_id}/quota"): {"max_concurrent_runs": 999},
    ("GET", "/api/admin/users/{user_id}/simulations"): {},
}
# Every console URL (by name), the method that changes something, and its form data.
CONSOLE_PAGES: dict[str, tuple[str, dict[str, str]]] = {
    "users": ("GET", {}),
    "user": ("GET", {}),
    "set_staff": ("POST", {"staff": "1"}),
    "set_active": ("POST", {"active": "0"}),
    "delete": ("POST", {}),
    "set_quota": ("POST", {"max_concurrent_runs": "999"}),
}


def _admin_operations(client: Any) -> set[tuple[str, str]]:
    paths = client.get("/api/openapi.json").json()["paths"]
    return {(m.upper(), p) for p, ops in paths.items() if p.startswith("/api/admin/") for m in ops}


def _untouched(target: Any) -> None:
    from django.contrib.auth import get_user_model

    from web.accounts.models import Quota

    target = get_user_model().objects.get(pk=target.pk)  # still there
    assert not target.is_staff and target.is_active
    assert not Quota.objects.filter(user=target).exists()


def test_it_covers_every_admin_endpoint(client: Any) -> None:
    assert _admin_operations(client) == set(ADMIN_OPS), "add new endpoints to ADMIN_OPS"


@pytest.mark.parametrize(("method", "path"), sorted(ADMIN_OPS))
def test_it_answers_403_to_non_staff_on_every_admin_endpoint(
    client: Any, make_user: Any, method: str, path: str
) -> None:
    user, target = make_user(), make_user()
    _sim(target, "running")
    url = path.replace("{user_id}", str(target.pk))
    body = ADMIN_OPS[(method, path)]
    extra = {"data": json.dumps(body), "content_type": "application/json"} if body else {}
    resp = client.generic(method, url, **extra, **_token(client, user))
    assert resp.status_code == 403, resp.content
    assert "staff" in resp.json()["detail"]
    client.force_login(user)  # the browser session of a non-staff user: refused the same way
    csrf = {"HTTP_X_CSRFTOKEN": _csrf_cookie(client)}
    assert client.generic(method, url, **extra, **csrf).status_code == 403
    _untouched(target)


def _csrf_cookie(client: Any) -> str:
    client.get("/accounts/")
    return client.cookies["csrftoken"].value


def test_it_covers_every_console_page() -> None:
    from web.console.urls import urlpatterns

    assert {p.name for p in urlpatterns} == set(CONSOLE_PAGES), "add new pages to CONSOLE_PAGES"


@pytest.mark.parametrize("name", sorted(CONSOLE_PAGES))
def test_it_answers_403_to_non_staff_on_every_console_page(
    client: Any, make_user: Any, name: str
) -> None:
    from django.urls import reverse

    user, target = make_user(), make_user()
    method, data = CONSOLE_PAGES[name]
    kwargs = {"user_id": target.pk} if name != "users" else {}
    url = reverse(f"console:{name}", kwargs=kwargs)
    anonymous = client.get(url) if method == "GET" else client.post(url, data)
    assert anonymous.status_code in (302, 403)
    client.force_login(user)
    assert client.get(url).status_code == 403
    resp = _post(client, url, data, page="/accounts/")  # with a valid CSRF token
    assert resp.status_code == 403, resp.content[:300]
    _untouched(target)


def test_a_name_with_no_account_owns_nothing_and_a_new_account_of_it_inherits_nothing(
    client: Any, admin: Any, make_user: Any, real_kafka: str
) -> None:
    """Runs that carry only an owner name (made before ids, or for a name with no account)
    belong to nobody: the account of that name (then or later) neither sees nor counts them."""
    from web.simulations.models import Simulation

    target = make_user()
    name = target.get_username()
    Simulation.objects.create(owner=None, owner_name=name, status="running", name="orphan run")
    _sim(target, "finished")
    html = client.get(f"/console/users/{target.pk}/").content.decode()
    assert "orphan run" not in html and 'id="count-total">1<' in html
    listed = client.get("/api/admin/users", {"q": name}).json()
    assert (listed[0]["simulations"], listed[0]["running"]) == (1, 0)
    rows = client.get(f"/api/admin/users/{target.pk}/simulations").json()
    assert [r["name"] for r in rows] != [] and "orphan run" not in {r["name"] for r in rows}
