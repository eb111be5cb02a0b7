"""The old system's defect: dashboards pasted user text into SQL. Names, tags and filters full
of SQL metacharacters (quotes, `;--`, LIKE wildcards, backslashes, NUL) must match literally,
over the API and on the list page, and never cause an error."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest

PASSWORD = "pw-long-enough-1"
# name -> tags; each name is made unique per test by a suffix.
RUNS = {
    "fifty% off": ["it's", "a;--b"],
    "under_score": ["back\\slash"],
    "plain": ["x%y", 'dq"uote'],
    "O'Brien'); DROP TABLE nnt_simulation;--": ["%", "_"],
}
# free text -> the runs (by name) it must find, and only those
SEARCHES = {
    "%": {"fifty% off", "plain", "O'Brien'); DROP TABLE nnt_simulation;--"},
    "_": {"under_score", "O'Brien'); DROP TABLE nnt_simulation;--"},
    "\\": {"under_score"},
    "'": {"fifty% off", "O'Brien'); DROP TABLE nnt_simulation;--"},
    "); DROP TABLE": {"O'Brien'); DROP TABLE nnt_simulation;--"},
    ";--": {"fifty% off", "O'Brien'); DROP TABLE nnt_simulation;--"},
    '"': {"plain"},
    "' OR '1'='1": set(),
    "%%": set(),
    "\\%": set(),
    "a\x00b": set(),
}
# exact tag -> runs carrying it
TAGS = {
    "%": {"O'Brien'); DROP TABLE nnt_simulation;--"},
    "_": {"O'Brien'); DROP TABLE nnt_simulation;--"},
    "it's": {"fifty% off"},
    "a;--b": {"fifty% off"},
    "back\\slash": {"under_score"},
    "x%": set(),
    "'": set(),
    "{a,b}": set(),
}


@pytest.fixture()
def world(client: Any, make_user: Any) -> dict[str, Any]:
    """A user with the hostile runs, another user with a lookalike, and a token."""
    from web.simulations.models import Simulation

    ada, bob = make_user(), make_user()
    for name, tags in RUNS.items():
        Simulation.objects.create(owner=ada, owner_name=ada.get_username(), name=name, tags=tags)
    Simulation.objects.create(owner=bob, owner_name=bob.get_username(), name="bob 100%", tags=["%"])
    resp = client.post(
        "/api/tokens",
        {"username": ada.get_username(), "password": PASSWORD},
        content_type="application/json",
    )
    return {"ada": ada, "auth": {"HTTP_AUTHORIZATION": f"Bearer {resp.json()['token']}"}}


def _api_names(client: Any, world: dict[str, Any], **params: str) -> set[str]:
    resp = client.get("/api/simulations", params, **world["auth"])
    assert resp.status_code == 200, (params, resp.content[:300])
    return {s["name"] for s in resp.json()}


def _page_names(client: Any, world: dict[str, Any], **params: str) -> set[str]:
    client.force_login(world["ada"])
    resp = client.get("/simulations/", params)
    assert resp.status_code == 200, params
    rows = re.findall(
        r'<a data-role="name" class="run-name" href="[^"]+" title="[^"]*">([^<]*)</a>',
        resp.content.decode(),
    )
    return {html.unescape(r) for r in rows}


@pytest.mark.parametrize("text", sorted(SEARCHES))
def test_it_searches_hostile_text_literally(client: Any, world: dict[str, Any], text: str) -> None:
    assert _api_names(client, world, q=text) == SEARCHES[text]
    assert _page_names(client, world, q=text) == SEARCHES[text]


@pytest.mark.parametrize("tag", sorted(TAGS))
def test_it_filters_hostile_tags_exactly(client: Any, world: dict[str, Any], tag: str) -> None:
    assert _api_names(client, world, tag=tag) == TAGS[tag]
    assert _page_names(client, world, tag=tag) == TAGS[tag]


@pytest.mark.parametrize("status", ["running' OR '1'='1", "queued;--", "%", "queued\x00"])
def test_it_treats_a_hostile_status_as_no_match(
    client: Any, world: dict[str, Any], status: str
) -> None:
    assert _api_names(client, world, status=status) == set()
    assert _page_names(client, world, status=status) == set()
    assert len(_api_names(client, world, status="queued")) == len(RUNS)  # the table is intact


def test_it_adds_lists_and_removes_hostile_tags(client: Any, world: dict[str, Any]) -> None:
    from web.simulations.models import Simulation

    sim = Simulation.objects.get(owner=world["ada"], name="plain")
    url = f"/api/simulations/{sim.id}/tags"
    hostile = ["'; DELETE FROM auth_user;--", "100%_sure", "c:\\temp\\", "{x,y}", "NULL"]
    for tag in hostile:
        resp = client.post(url, {"tag": tag}, content_type="application/json", **world["auth"])
        assert resp.status_code == 200 and tag in resp.json()["tags"], resp.content
    for tag in hostile:
        assert _api_names(client, world, tag=tag) == {"plain"}
    tags = client.get("/api/tags", **world["auth"]).json()
    assert set(hostile) <= set(tags) and "bob 100%" not in tags
    nul = client.post(url, {"tag": "a\x00b"}, content_type="application/json", **world["auth"])
    assert nul.status_code == 422 and "tag" in nul.json()["errors"]
    gone = client.generic(
        "DELETE", url, '{"tag": "100%_sure"}', content_type="application/json", **world["auth"]
    )
    assert gone.status_code == 200 and "100%_sure" not in gone.json()["tags"]
    sim.refresh_from_db()
    assert set(sim.tags) == {"x%y", 'dq"uote', *hostile} - {"100%_sure"}
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.filter(pk=world["ada"].pk).exists()


def test_it_never_matches_another_users_lookalike(client: Any, world: dict[str, Any]) -> None:
    assert "bob 100%" not in _api_names(client, world, q="100%")
    assert _api_names(client, world, tag="%") == TAGS["%"]


def test_it_answers_nul_characters_with_an_error_that_names_the_field(
    client: Any, world: dict[str, Any]
) -> None:
    """PostgreSQL cannot store NUL: text carrying one is refused up front, never a 500."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    token = client.post(
        "/api/tokens", {"username": "ada\x00", "password": "x"}, content_type="application/json"
    )
    assert token.status_code == 401
    config = '{"name": "bad\\u0000name", "tags": ["ok"]}'
    model = SimpleUploadedFile("model.json", b'{"class_name": "Sequential", "config": {}}')
    resp = client.post("/api/experiments", {"config": config, "model": model}, **world["auth"])
    assert resp.status_code == 422 and "name" in resp.json()["errors"], resp.content
    model = SimpleUploadedFile("model.json", b'{"class_name": "Seq\\u0000", "config": {}}')
    config = '{"name": "fine", "dataset_train": "https://example.org/t.csv"}'
    resp = client.post("/api/experiments", {"config": config, "model": model}, **world["auth"])
    assert resp.status_code == 422 and "model" in resp.json()["errors"], resp.content
