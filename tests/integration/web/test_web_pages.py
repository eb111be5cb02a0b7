"""Pages rendered by Django against real PostgreSQL, as a browser gets them."""

from __future__ import annotations

import io
import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from django.core.management import call_command
from django.db import connection


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    return Simulation.objects.create(
        owner=owner,
        owner_name=owner.get_username(),
        name=f"page run {uuid.uuid4().hex[:6]}",
        **fields,
    )


def test_it_shows_the_home_page(client: Any) -> None:
    html = client.get("/").content.decode()
    assert "Watch your neural networks learn" in html and 'href="/accounts/login/"' in html


def test_it_sends_anonymous_users_to_login(client: Any) -> None:
    resp = client.get("/simulations/")
    assert resp.status_code == 302 and resp["Location"].startswith("/accounts/login/")


def test_it_logs_in_with_csrf(client: Any, make_user: Any) -> None:
    user = make_user()
    page = client.get("/accounts/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    resp = client.post(
        "/accounts/login/",
        {
            "username": user.get_username(),
            "password": "pw-long-enough-1",
            "csrfmiddlewaretoken": token,
        },
    )
    assert resp.status_code == 302 and resp["Location"] == "/simulations/"


def test_it_registers_a_user(client: Any) -> None:
    from django.contrib.auth import get_user_model

    page = client.get("/accounts/register/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())[1]
    name = f"new{uuid.uuid4().hex[:8]}"
    resp = client.post(
        "/accounts/register/",
        {
            "username": name,
            "password1": "Zebra-Quartz-91",
            "password2": "Zebra-Quartz-91",
            "csrfmiddlewaretoken": token,
        },
    )
    assert resp.status_code == 302
    assert get_user_model().objects.filter(username=name).exists()


def test_it_shows_the_empty_state(client: Any, make_user: Any) -> None:
    client.force_login(make_user())
    html = client.get("/simulations/").content.decode()
    assert "No runs yet" in html and "Create an experiment" in html and "make up" in html


def test_it_lists_simulations_with_progress(client: Any, make_user: Any) -> None:
    user = make_user()
    sim = _sim(user, status="running", epoch=3, total_epochs=4, tags=["mnist"])
    client.force_login(user)
    html = client.get("/simulations/").content.decode()
    assert sim.name in html and "width: 75%" in html and "mnist" in html and "running" in html


def test_it_renders_the_chart_with_initial_points(client: Any, make_user: Any) -> None:
    user = make_user()
    sim = _sim(user, status="running", epoch=2, total_epochs=5)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric VALUES (%s, %s, %s, %s, %s)",
            [(sim.id, 1, "loss", 0.9, at), (sim.id, 2, "loss", 0.5, at)],
        )
    client.force_login(user)
    html = client.get(f"/simulations/{sim.id}/").content.decode()
    assert 'id="chart-metrics"' in html and f"/ws/simulations/{sim.id}/" in html
    initial = json.loads(re.search(r'id="initial-metrics"[^>]*>(.*?)</script>', html, re.S)[1])
    assert initial["metrics"]["loss"] == {"epochs": [1, 2], "values": [0.9, 0.5]}
    assert "/static-vendor/plotly.min.js" in html


def test_it_hides_other_users_pages(client: Any, make_user: Any) -> None:
    sim = _sim(make_user())
    client.force_login(make_user())
    assert client.get(f"/simulations/{sim.id}/").status_code == 404


def test_it_serves_plotly_from_the_package_with_long_cache(client: Any) -> None:
    resp = client.get("/static-vendor/plotly.min.js")
    assert resp.status_code == 200 and b"plotly" in resp.content[:2000].lower()
    assert "max-age=31536000" in resp["Cache-Control"]
    packed = client.get("/static-vendor/plotly.min.js", HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip" and len(packed.content) < len(resp.content)
    assert client.get("/static/web/live.js").status_code == 200
    assert client.get("/static/../settings.py").status_code == 404


def test_it_ensures_a_user_idempotently(django_ready: Any) -> None:
    from django.contrib.auth import get_user_model

    name = f"demo{uuid.uuid4().hex[:6]}"
    out = io.StringIO()
    call_command("ensure_user", username=name, password="pw-1-long-enough", staff=True, stdout=out)
    call_command("ensure_user", username=name, password="pw-2-long-enough", stdout=out)
    user = get_user_model().objects.get(username=name)
    assert user.is_staff and user.check_password("pw-2-long-enough")
    assert out.getvalue().splitlines()[0].startswith(f"created staff {name}")
    assert out.getvalue().splitlines()[1].startswith(f"updated staff {name}")


TRACEBACK = (
    'Traceback (most recent call last):\n  File "trainer/runner.py", line 180, in execute\n'
    "tensorflow.python.framework.errors_impl.InvalidArgumentError: Graph execution error:\n"
    "indices[5,7] = 16 is not in [0, 16)\n\t [[{{node embed_1/intensity_1/GatherV2}}]]"
)
REASON = (
    "epoch 1 (validation), layer 'intensity': input value 16 is not a valid index in [0, 16) "
    "— raise the layer's input_dim (vocabulary size) or fix the data"
)


def test_it_headlines_a_failed_run_with_its_reason_and_the_traceback_behind_details(
    client: Any, make_user: Any
) -> None:
    user = make_user()
    sim = _sim(user, status="failed", epoch=0, total_epochs=3, message=REASON, error=TRACEBACK)
    client.force_login(user)
    html = client.get(f"/simulations/{sim.id}/").content.decode()
    box = re.search(r'<section id="sim-failure" class="failure"(.*?)</section>', html, re.S)
    assert box, "the failure box is shown"
    assert "This run failed" in box[1]
    reason = re.search(r'id="sim-failure-reason"[^>]*>(.*?)</p>', box[1], re.S)[1]
    assert reason == REASON.replace("'", "&#x27;")
    details = re.search(
        r'<details id="sim-failure-details" class="failure-details">(.*?)</details>', box[1], re.S
    )
    assert (
        details and "Traceback (most recent call last)" in details[1] and " open" not in details[0]
    )
    empty = re.search(r'<p id="chart-empty"[^>]*>(.*?)</p>', html, re.S)[1]
    assert empty == "No epoch was logged: the run failed before its first logged epoch."
    listing = client.get("/simulations/").content.decode()
    assert 'data-role="reason"' in listing and "input value 16 is not a valid index" in listing
    assert "Traceback" not in listing


def test_it_shows_an_orchestrator_failure_without_an_empty_details_toggle(
    client: Any, make_user: Any
) -> None:
    user = make_user()
    message = "trainer process killed by signal 9 (SIGKILL); last good epoch 2"
    sim = _sim(user, status="failed", epoch=2, total_epochs=3, message=message, error=message)
    client.force_login(user)
    html = client.get(f"/simulations/{sim.id}/").content.decode()
    assert f'id="sim-failure-reason" class="failure-reason">{message}</p>' in html
    assert 'class="failure-details hidden"' in html
