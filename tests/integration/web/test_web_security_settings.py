"""Production settings (issue 8.3): `check --deploy` is clean with NNT_HTTPS=true, and every
response carries the security headers."""

from __future__ import annotations

import json
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]


def _env(web_db_url: str, home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NNT_", "DJANGO_"))}
    return (
        env
        | {
            "DATABASE_URL": web_db_url,
            "NNT_HOME": str(home),
            "NNT_DEBUG": "false",
            "NNT_ALLOWED_HOSTS": "nnt.example.org",
        }
        | extra
    )


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240
    )


def test_it_passes_check_deploy_with_https(web_db_url: str, tmp_path: Path) -> None:
    env = _env(web_db_url, tmp_path, NNT_HTTPS="true", NNT_SECRET_KEY=secrets.token_urlsafe(50))
    done = _run(["-m", "web", "manage", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_it_passes_check_deploy_with_the_generated_secret(web_db_url: str, tmp_path: Path) -> None:
    env = _env(web_db_url, tmp_path, NNT_HTTPS="true")
    done = _run(["-m", "web", "manage", "check", "--deploy", "--fail-level", "WARNING"], env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600


def test_it_turns_on_secure_cookies_hsts_and_redirect_with_https(
    web_db_url: str, tmp_path: Path
) -> None:
    names = [
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
        "SESSION_COOKIE_HTTPONLY",
        "SECURE_HSTS_SECONDS",
        "SECURE_SSL_REDIRECT",
        "X_FRAME_OPTIONS",
        "SECURE_CONTENT_TYPE_NOSNIFF",
        "CSRF_TRUSTED_ORIGINS",
    ]
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        f"print(json.dumps({{n: getattr(s, n, None) for n in {names!r}}}))"
    )
    env = _env(
        web_db_url,
        tmp_path,
        NNT_HTTPS="true",
        DJANGO_SETTINGS_MODULE="web.settings",
        NNT_CSRF_TRUSTED_ORIGINS="https://nnt.example.org",
    )
    done = _run(["-c", code], env)
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout.strip().splitlines()[-1])
    assert values == {
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
        "SESSION_COOKIE_HTTPONLY": True,
        "SECURE_HSTS_SECONDS": 31_536_000,
        "SECURE_SSL_REDIRECT": True,
        "X_FRAME_OPTIONS": "DENY",
        "SECURE_CONTENT_TYPE_NOSNIFF": True,
        "CSRF_TRUSTED_ORIGINS": ["https://nnt.example.org"],
    }


def test_it_names_a_bad_trusted_origin(web_db_url: str, tmp_path: Path) -> None:
    env = _env(web_db_url, tmp_path, NNT_CSRF_TRUSTED_ORIGINS="nnt.example.org")
    done = _run(["-m", "web", "manage", "check"], env)
    assert done.returncode != 0 and "NNT_CSRF_TRUSTED_ORIGINS" in done.stderr + done.stdout


def test_it_sends_security_headers_and_httponly_sessions(client: Any, make_user: Any) -> None:
    resp = client.get("/")
    assert resp["X-Frame-Options"] == "DENY"
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert resp["Referrer-Policy"] == "same-origin"
    user = make_user()
    login = client.get("/accounts/login/")
    token = login.cookies["csrftoken"].value
    resp = client.post(
        "/accounts/login/",
        {
            "username": user.get_username(),
            "password": "pw-long-enough-1",
            "csrfmiddlewaretoken": token,
        },
    )
    session = resp.cookies["sessionid"]
    assert session["httponly"] and session["samesite"] == "Lax"


def test_it_refuses_session_api_writes_without_csrf(client: Any, make_user: Any) -> None:
    admin = make_user(staff=True)
    client.force_login(admin)
    resp = client.patch(
        f"/api/admin/users/{make_user().pk}", {"is_staff": True}, content_type="application/json"
    )
    assert resp.status_code in (401, 403)


@pytest.mark.parametrize("host", ["", "evil.example.org", "bad host"])
def test_a_bad_host_header_is_a_400_logged_as_one_line(
    client: Any, host: str, caplog: pytest.LogCaptureFixture
) -> None:
    # The fuzz once sent an empty Host: the answer was right (400), the log a traceback.
    with caplog.at_level(logging.WARNING, "django.security.DisallowedHost"):
        resp = client.get("/api/simulations", HTTP_HOST=host)
    assert resp.status_code == 400
    [record] = [r for r in caplog.records if r.name == "django.security.DisallowedHost"]
    assert "Invalid HTTP_HOST header" in record.getMessage()
    assert record.exc_info is None and "Traceback" not in caplog.text
