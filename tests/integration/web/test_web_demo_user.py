"""The demo user (`nntracker demo`, which `nntracker up --demo` runs): made only if missing,
with a random password shown once and kept in $NNT_HOME/demo-password (mode 600), never
reset or re-enabled, and never on a command line; `ensure_user` takes passwords on standard
input or in the environment."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest
from django.core.management import CommandError, call_command

ROOT = Path(__file__).resolve().parents[3]
DEMO_LINE = re.compile(r"demo ready: open (\S+)\s+\(login: (\S+) / (\S+)\)")  # tests/e2e/stack.py


def _demo(url: str, home: Path) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run `nntracker demo`, recording the command line of every process it starts."""
    env = {k: v for k, v in os.environ.items() if k not in ("NNT_TOKEN", "NNT_USER_PASSWORD")}
    env |= {"NNT_URL": url, "NNT_HOME": str(home)}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "client", "demo"], cwd=ROOT, env=env, stdout=out, stderr=err
        )
        seen: set[str] = set()
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                parent = psutil.Process(proc.pid)
                for member in [parent, *parent.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        seen.add(" ".join(member.cmdline()))
            time.sleep(0.02)
        proc.wait(timeout=180)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(proc.args, proc.returncode, out.read(), err.read())
    return done, sorted(seen)


def test_the_demo_user_is_made_once_and_never_changed_after(live_web: Any, tmp_path: Path) -> None:
    from django.contrib.auth import get_user_model

    users = get_user_model().objects
    home = tmp_path / "home"
    first, command_lines = _demo(live_web.url, home)
    assert first.returncode == 0, first.stderr[-2000:]
    match = DEMO_LINE.search(first.stdout)
    assert match, first.stdout
    user, password = match.group(2), match.group(3)
    assert user == "demo" and password != "demo-password" and len(password) >= 20
    kept = home / "demo-password"
    assert kept.read_text() == password and kept.stat().st_mode & 0o777 == 0o600
    assert users.get(username="demo").check_password(password)
    assert any("ensure_user" in line for line in command_lines), command_lines
    assert not [line for line in command_lines if password in line], "password in a command line"

    digest = users.get(username="demo").password
    second, _ = _demo(live_web.url, home)
    assert second.returncode == 0, second.stderr[-2000:]
    assert password not in second.stdout and f"password in {kept}" in second.stdout
    assert users.get(username="demo").password == digest, "the password was reset"

    users.filter(username="demo").update(is_active=False)  # an admin disabled it
    third, _ = _demo(live_web.url, home)
    assert third.returncode == 1
    assert "it is left as it is" in third.stderr, third.stderr
    demo = users.get(username="demo")
    assert not demo.is_active and demo.password == digest, "the demo user was re-enabled or reset"


def test_ensure_user_reads_the_password_from_stdin_or_the_environment(
    django_ready: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.auth import get_user_model

    name = f"ensure{uuid.uuid4().hex[:6]}"
    monkeypatch.delenv("NNT_USER_PASSWORD", raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO("from-stdin-Quartz-1\n"))
    call_command("ensure_user", "--username", name, "--password-stdin", stdout=io.StringIO())
    assert get_user_model().objects.get(username=name).check_password("from-stdin-Quartz-1")
    monkeypatch.setenv("NNT_USER_PASSWORD", "from-env-Quartz-2")
    call_command("ensure_user", "--username", name, stdout=io.StringIO())
    assert get_user_model().objects.get(username=name).check_password("from-env-Quartz-2")
    monkeypatch.delenv("NNT_USER_PASSWORD")
    with pytest.raises(CommandError, match="--password-stdin, or in NNT_USER_PASSWORD"):
        call_command("ensure_user", "--username", name, stdout=io.StringIO())


def test_ensure_user_create_only_leaves_an_existing_user_as_it_is(
    make_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from django.contrib.auth import get_user_model

    user = make_user()
    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    before = get_user_model().objects.get(pk=user.pk).password
    monkeypatch.setenv("NNT_USER_PASSWORD", "another-Quartz-3")
    out = io.StringIO()
    call_command("ensure_user", "--username", user.get_username(), "--create-only", stdout=out)
    after = get_user_model().objects.get(pk=user.pk)
    assert out.getvalue().startswith(f"exists {user.get_username()} ")
    assert "disabled" in out.getvalue()
    assert after.password == before and not after.is_active
