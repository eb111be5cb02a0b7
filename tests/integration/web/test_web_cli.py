"""The `nntracker` client commands, run as a user runs them, against the real web server (daphne
on the test database, real Kafka): what they print, their exit codes and the bytes they move."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from django.db import connection

PASSWORD = "pw-long-enough-1"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
MODEL = {"class_name": "Sequential", "config": {"name": "m", "layers": []}}


def _nntracker() -> list[str]:
    """The installed console script, as users run it (python -m client from a bare checkout)."""
    script = Path(sys.executable).with_name("nntracker")
    return [str(script)] if script.exists() else [sys.executable, "-m", "client"]


class Cli:
    """Runs `nntracker …` in its own NNT_HOME, pointed at the live server."""

    def __init__(self, url: str, home: Path, token: str | None) -> None:
        self.env = {k: v for k, v in os.environ.items() if k not in ("NNT_TOKEN", "DATABASE_URL")}
        self.env |= {"NNT_URL": url, "NNT_HOME": str(home), "COLUMNS": "120"}
        if token:
            self.env["NNT_TOKEN"] = token
        self.cwd = home

    def __call__(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*_nntracker(), *args],
            env=self.env,
            cwd=self.cwd,
            timeout=timeout,
            capture_output=True,
            text=True,
        )

    def start(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*_nntracker(), *args],
            env=self.env,
            cwd=self.cwd,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )


def _token(user: Any) -> str:
    from web.accounts.models import ApiToken

    return ApiToken.issue(user, name="cli test")[1]


@pytest.fixture()
def cli_for(live_web: Any, tmp_path: Path) -> Any:
    """`cli_for(user)`: a CLI logged in as that user (None: not logged in)."""

    def make(user: Any | None) -> Cli:
        home = tmp_path / (user.get_username() if user else "anonymous")
        home.mkdir(exist_ok=True)
        return Cli(live_web.url, home, _token(user) if user else None)

    return make


def _sim(owner: Any, **fields: Any) -> Any:
    from web.simulations.models import Simulation

    defaults = {
        "name": f"cli run {uuid.uuid4().hex[:6]}",
        "owner_name": owner.get_username(),
        "total_epochs": 4,
    }
    return Simulation.objects.create(owner=owner, **(defaults | fields))


def _files(folder: Path, **config: Any) -> dict[str, Path]:
    base = {
        "name": f"cli-{uuid.uuid4().hex[:6]}",
        "total_epochs": 3,
        "learning_rates": [0.1, 0.01],
        "tags": ["from-cli"],
    }
    paths = {
        "config": folder / "config.json",
        "model": folder / "model.json",
        "train": folder / "train.csv",
    }
    paths["config"].write_text(json.dumps(base | config))
    paths["model"].write_text(json.dumps(MODEL))
    # big enough for several chunks of the streamed upload
    rows = "".join(f"{i},{i % 7},{i * 0.5}\n" for i in range(60_000))
    paths["train"].write_text("a,b,label\n" + rows)
    return paths


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


def test_it_logs_in_submits_with_upload_progress_and_lists(
    live_web: Any, make_user: Any, tmp_path: Path, command_log: Any
) -> None:
    from web.simulations.models import Simulation

    user = make_user()
    cli = Cli(live_web.url, tmp_path, token=None)
    login = cli("login", user.get_username(), "--password", PASSWORD)
    assert login.returncode == 0, login.stderr
    assert f"logged in as {user.get_username()}" in login.stdout
    assert (tmp_path / "token").stat().st_mode & 0o777 == 0o600

    paths = _files(tmp_path)
    result = cli(
        "submit",
        str(paths["config"]),
        "--model",
        str(paths["model"]),
        "--train",
        str(paths["train"]),
    )
    _clean(result)
    assert result.returncode == 0, result.stderr
    head = re.match(rf"experiment ({UUID}): 2 simulation\(s\)\n", result.stdout)
    assert head, result.stdout
    ids = re.findall(rf"^  ({UUID})$", result.stdout, re.M)
    assert len(ids) == 2
    assert re.search(r"uploaded config\.json: [\d.]+ (KB|MB) in [\d.]+s", result.stderr), (
        result.stderr
    )

    sims = Simulation.objects.filter(experiment_id=head[1]).order_by("index")
    assert [str(s.id) for s in sims] == ids and all(s.owner_id == user.pk for s in sims)
    data = paths["train"].read_bytes()
    stored = live_web.home / "datasets" / f"{hashlib.sha256(data).hexdigest()}.csv"
    assert stored.read_bytes() == data  # the streamed multipart body arrived byte for byte
    [create] = command_log.for_key(head[1])
    assert create.type == "create" and create.issued_by == user.get_username()

    listed = cli("ls")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["ID", "STATUS", "EPOCH", "HEALTH", "NAME"]
    for sid in ids:
        [line] = [ln for ln in lines if ln.startswith(sid)]
        assert "queued" in line and "0/3" in line and "[from-cli]" in line
        assert line.split()[3] == "unknown", "no epoch yet: nothing diagnosed"
    assert cli("ls", "--tag", "from-cli", "--status", "queued").stdout.count("queued") == 2
    none = cli("ls", "--tag", "no-such-tag")
    assert none.returncode == 0 and "no simulation matches" in none.stdout


def test_it_sends_pause_resume_stop_and_rm(make_user: Any, cli_for: Any, command_log: Any) -> None:
    user, other = make_user(), make_user()
    mine, theirs = _sim(user, status="running"), _sim(other, status="running")
    cli = cli_for(user)
    for verb, kind, status in (  # each in a status that takes it (schemas/lifecycle.py)
        ("pause", "pause", "running"),
        ("resume", "resume", "paused"),
        ("stop", "stop", "running"),
        ("rm", "delete", "stopped"),
    ):
        type(mine).objects.filter(pk=mine.pk).update(status=status)
        result = cli(verb, str(mine.id))
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"{kind}: {mine.id} (command sent)\n"
    sent = command_log.for_key(str(mine.id), expect=4)
    assert [c.type for c in sent] == ["pause", "resume", "stop", "delete"]
    assert {c.issued_by for c in sent} == {user.get_username()}

    refused = cli("pause", str(theirs.id))
    _clean(refused)
    assert refused.returncode == 1 and refused.stdout == ""
    assert f"HTTP 404: no simulation {theirs.id}" in refused.stderr
    assert "nntracker ls" in refused.stderr
    assert command_log.for_key(str(theirs.id), expect=0) == []


def test_it_exports_the_zip_with_download_progress(
    make_user: Any, cli_for: Any, tmp_path: Path
) -> None:
    user = make_user()
    sim = _sim(user, status="finished", epoch=3, total_epochs=3)
    at = datetime(2025, 1, 1, tzinfo=UTC)
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_epoch_metric (simulation_id, epoch, metric, value, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            [(sim.id, e, "loss", 1.0 / e, at) for e in (1, 2, 3)],
        )
    cli = cli_for(user)
    out = tmp_path / "exports"
    out.mkdir()
    result = cli("export", str(sim.id), "-o", str(out))
    _clean(result)
    assert result.returncode == 0, result.stderr
    dest = out / f"simulation-{sim.id}.zip"
    assert result.stdout == f"saved {dest} ({dest.stat().st_size} bytes)\n"
    assert re.search(rf"downloaded simulation-{sim.id}\.zip: [\d.]+ KB", result.stderr)
    with zipfile.ZipFile(dest) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("epochs.csv").decode())))
        assert json.loads(zf.read("config.json"))["simulation"]["id"] == str(sim.id)
    assert [(r["epoch"], float(r["loss"])) for r in rows] == [("1", 1.0), ("2", 0.5), ("3", 1 / 3)]
    assert not list(out.glob(".*.part"))


def test_it_exports_every_value_in_float16_with_progress_against_the_estimate(
    make_user: Any, cli_for: Any, tmp_path: Path
) -> None:
    from schemas.tensors import encode_array, split

    user = make_user()
    sim = _sim(user, status="finished", epoch=2, total_epochs=2)
    kernels = {
        e: np.random.default_rng(e).normal(size=(256, 128)).astype(np.float32) for e in (1, 2)
    }
    at = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        (sim.id, 1, "dense", "kernel", "m/dense/kernel", e, i, len(parts), "float32",
         [256, 128], "zstd", part, json.dumps({"mean": float(k.mean())}) if i == 0 else None, at)
        for e, k in kernels.items()
        for parts in [split(encode_array(k), 1 << 16)]
        for i, part in enumerate(parts)
    ]  # fmt: skip
    with connection.cursor() as cur:
        cur.executemany(
            "INSERT INTO nnt_tensor (simulation_id, layer_index, layer_name, kind, variable, "
            "epoch, chunk, chunks, dtype, shape, compression, data, stats, at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            rows,
        )
    cli = cli_for(user)
    result = cli("export", str(sim.id), "--full", "--float16", "-o", str(tmp_path))
    _clean(result)
    assert result.returncode == 0, result.stderr
    dest = tmp_path / f"simulation-{sim.id}-full-float16.zip"
    assert result.stdout == f"saved {dest} ({dest.stat().st_size} bytes)\n"
    assert re.search(rf"full export of {sim.id}: about 1\d\d\.\d KB", result.stderr)
    with zipfile.ZipFile(dest) as zf:
        got = np.load(io.BytesIO(zf.read("kernels.npz")))
    assert got["dense.kernel"].dtype == np.float16 and list(got["dense.kernel.epochs"]) == [1, 2]
    assert np.array_equal(got["dense.kernel"][1], kernels[2].astype(np.float16))
    refused = cli("export", str(sim.id), "--float16")
    assert refused.returncode == 1 and "--float16: applies to --full exports only" in refused.stderr


def _set(sim: Any, **fields: Any) -> None:
    from web.simulations.models import Simulation

    Simulation.objects.filter(pk=sim.pk).update(**fields)


def test_it_waits_until_every_run_ends(make_user: Any, cli_for: Any) -> None:
    user = make_user()
    sims = [_sim(user, status="queued"), _sim(user, status="running", epoch=1)]
    cli = cli_for(user)
    proc = cli.start("wait", *(str(s.id) for s in sims), "--interval", "0.2")
    time.sleep(1.5)
    assert proc.poll() is None, proc.communicate()
    _set(sims[0], status="running", epoch=2)
    time.sleep(1)
    for sim in sims:
        _set(sim, status="finished", epoch=4)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"{str(sims[0].id)[:8]}  queued    epoch 0/4" in stderr
    assert f"{str(sims[0].id)[:8]}  running   epoch 2/4" in stderr
    assert stdout.endswith("all 2 simulation(s) finished\n")
    assert stdout.count("finished  epoch 4/4") == 2


def test_it_reports_runs_that_did_not_finish(make_user: Any, cli_for: Any) -> None:
    user = make_user()
    failed = _sim(user, status="failed", epoch=2, error="Traceback…\nValueError: NaN loss")
    stuck = _sim(user, status="running", epoch=1)
    cli = cli_for(user)
    result = cli("wait", str(failed.id), "--interval", "0.2")
    _clean(result)
    assert result.returncode == 1
    assert "failed    epoch 2/4  ValueError: NaN loss" in result.stdout
    assert "1 simulation(s) did not finish" in result.stderr
    late = cli("wait", str(stuck.id), "--interval", "0.2", "--timeout", "1")
    assert late.returncode == 1 and "still running after --timeout 1s" in late.stderr


def test_it_submits_and_waits(
    make_user: Any, cli_for: Any, tmp_path: Path, real_kafka: str
) -> None:
    from web.simulations.models import Simulation

    user = make_user()
    cli = cli_for(user)
    paths = _files(tmp_path, learning_rates=[0.1])
    proc = cli.start(
        "submit",
        str(paths["config"]),
        "--model",
        str(paths["model"]),
        "--train",
        str(paths["train"]),
        "--wait",
        "--interval",
        "0.2",
    )
    deadline = time.monotonic() + 60
    while not Simulation.objects.filter(owner=user).exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    sim = Simulation.objects.get(owner=user)
    _set(sim, status="finished", epoch=3)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert f"  {sim.id}\n" in stdout and stdout.endswith("all 1 simulation(s) finished\n")


def test_it_explains_bad_input_without_a_traceback(
    make_user: Any, cli_for: Any, live_web: Any, tmp_path: Path
) -> None:
    from tests.services import free_port

    user = make_user()
    cli = cli_for(user)
    paths = _files(tmp_path)
    (tmp_path / "broken.json").write_text('{"name": "x",,}')
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "invalid.json").write_text(json.dumps({"learning_rates": [-1], "batch_size": 0}))
    model, train = str(paths["model"]), str(paths["train"])
    cases: list[tuple[list[str], list[str]]] = [
        (["submit", "missing.json", "--model", model], ["CONFIG: missing.json does not exist"]),
        (["submit", str(tmp_path), "--model", model], ["CONFIG:", "is a folder"]),
        (
            ["submit", str(tmp_path / "broken.json"), "--model", model],
            ["CONFIG:", "is not valid JSON", "line 1", "fix the file"],
        ),
        (["submit", str(tmp_path / "list.json"), "--model", model], ["must hold a JSON object"]),
        (
            ["submit", str(paths["config"]), "--model", "nope.json"],
            ["--model: nope.json does not exist", "Keras model JSON"],
        ),
        (
            ["submit", str(paths["config"]), "--model", model, "--train", "gone.csv"],
            ["--train: gone.csv does not exist"],
        ),
        (
            ["submit", str(tmp_path / "invalid.json"), "--model", model, "--train", train],
            ["HTTP 422", "learning_rates", "batch_size", "fix: correct the fields"],
        ),
        (["pause", "not-a-uuid"], ["ID: 'not-a-uuid' is not a simulation id", "nntracker ls"]),
        (
            ["export", str(uuid.uuid4()), "-o", str(tmp_path / "no" / "x.zip")],
            ["--output: folder", "does not exist"],
        ),
        (["export", str(uuid.uuid4())], ["HTTP 404", "nntracker ls"]),
        (["wait", str(uuid.uuid4()), "--interval", "0"], ["--interval: must be more than 0"]),
    ]
    for args, expected in cases:
        result = cli(*args)
        _clean(result)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        for text in expected:
            assert text in result.stderr, (args, text, result.stderr)

    anonymous = cli_for(None)("ls")
    assert anonymous.returncode == 1 and "not logged in: run `nntracker login" in anonymous.stderr
    revoked = Cli(live_web.url, tmp_path, token="nnt_revoked")("ls")
    assert revoked.returncode == 1 and "HTTP 401" in revoked.stderr
    assert "nntracker login USERNAME" in revoked.stderr
    down = Cli(f"http://127.0.0.1:{free_port()}", tmp_path, token="x")("ls")
    assert down.returncode == 1 and "cannot reach NN Tracker" in down.stderr
    usage = cli("submit")
    assert usage.returncode == 2 and "the following arguments are required" in usage.stderr
    for result in (anonymous, revoked, down, usage):
        _clean(result)
