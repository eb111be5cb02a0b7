"""docker-compose.yml brought up under podman-compose: Kafka, TimescaleDB, provisioning, the
stream workers, the orchestrator and the web, all from images; a run submitted through the REST
API trains in a trainer container the orchestrator starts, its epochs land in the database and
on the run page's live chart; `down -v` leaves nothing of the project behind.

No registry is reachable here: the application images are built by infra.images on the local
Debian base, Kafka and TimescaleDB by local stand-ins on the same base (standins.py), passed as
NNT_KAFKA_IMAGE and NNT_DB_IMAGE. The compose file is used unchanged.

Health checks: podman runs them from systemd timers, and this machine has no systemd, so
HealthTicker runs `podman healthcheck run` for every container of the project that has one, as
the timer would. Start order: podman-compose 1.x waits for `service_healthy` with `podman wait
--condition=healthy`, which podman before 4.6 lacks (it skips that wait with a warning), and it
creates each container with `--requires` on its dependencies, which podman 4.3 cannot start
when the dependencies have their own (`depends on container ... not found in input list`).
So the test keeps compose's order itself, one level at a time with `up -d --no-deps`: kafka
and db until healthy; provision and trainer until they exit, with exit code 0
(`service_completed_successfully`); then web, stream and orchestrator. stack.py drives podman.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from infra import images
from tests import polling
from tests.e2e.stack import launch_chromium, log_in, token_session
from tests.integration.compose import standins
from tests.integration.compose.stack import (
    PODMAN_COMPOSE,
    ROOT,
    HealthTicker,
    Stack,
    Timings,
    force_clean,
    leftovers,
    podman,
    wait_exited,
    wait_healthy,
)
from tests.services import free_port

pytestmark = pytest.mark.timeout(1800)

LONG_RUNNING = ("kafka", "db", "web", "stream", "orchestrator")
ONE_SHOT = ("provision", "trainer")
TRAINING_NETWORK = "nntracker-training"
STREAM_REPLICAS = 2  # docker-compose.yml's default (NNT_STREAM_REPLICAS)
EPOCHS = 12
USER, PASSWORD = "compose-user", "Compose-Quartz-4711"
# The group of the test's engine socket: no user of this machine has it, only the
# orchestrator's container (group_add).
ENGINE_GID = 23750


def _missing(what: str) -> None:
    """A missing tool fails under CI=true and skips a local run."""
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{what} (CI must run the compose test)")
    pytest.skip(what)


@pytest.fixture(scope="module")
def tools() -> None:
    """podman (as root: the orchestrator's socket), podman-compose, Chromium."""
    if not shutil.which("podman"):
        _missing("podman is not installed (infra/podman/setup.sh)")
    if os.geteuid() != 0:
        _missing("the compose test runs rootful podman: run it as root")
    if not PODMAN_COMPOSE.exists():
        _missing(f"{PODMAN_COMPOSE} missing: pip install -e '.[dev]'")
    if not Path("/usr/bin/chromium").exists() and not os.environ.get("NNT_CHROMIUM"):
        _missing("Chromium is not installed (apt-get install chromium)")


@pytest.fixture(scope="module")
def built(tools: None) -> Iterator[tuple[dict[str, str], Timings]]:
    """Every image the stack runs: the application images through infra.images, Kafka and
    TimescaleDB stand-ins from the same base."""
    timings = Timings()
    base = os.environ.get("NNT_BASE_IMAGE") or images.local_base()
    timings.mark(f"base image {base}")
    refs = images.build(["web", "stream", "orchestrator", "trainer"], base=base)
    timings.mark("application images (infra.images.build)")
    refs["kafka"] = standins.build_kafka(base)
    refs["db"] = standins.build_db(base)
    timings.mark("Kafka and TimescaleDB stand-ins")
    yield refs, timings


@pytest.fixture(scope="module")
def engine_socket(tools: None) -> Iterator[Path]:
    """A podman API service of the test's own, for the orchestrator: its socket belongs to a
    group of its own (ENGINE_GID, mode 660), which the orchestrator's container joins
    (NNT_DOCKER_GID) as uid 10001; the machine's socket (/run/podman/podman.sock) stays as it
    is."""
    folder = Path(tempfile.mkdtemp(prefix="nnt-compose-engine-"))
    folder.chmod(0o755)
    sock = folder / "podman.sock"
    log = (folder / "service.log").open("w")
    proc = subprocess.Popen(  # noqa: S603 - podman, our arguments
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    try:
        polling.until(sock.exists, 30, f"the podman API socket {sock}")
        os.chown(sock, 0, ENGINE_GID)
        sock.chmod(0o660)
        yield sock
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def data_dir(tools: None) -> Iterator[Path]:
    """NNT_DATA_DIR: owned by the images' user (10001), reachable by it from /."""
    path = Path(tempfile.mkdtemp(prefix="nnt-compose-data-"))
    path.chmod(0o755)
    os.chown(path, 10001, 10001)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def write_env(path: Path, stack: Stack, refs: dict[str, str], sock: Path, data: Path) -> None:
    """The .env a user writes (.env.example's four secrets and the host's paths), plus the
    stand-in images."""
    values = {
        "NNT_COMMAND_SECRET": secrets.token_hex(32),
        "NNT_DB_PASSWORD": secrets.token_hex(24),
        "NNT_SECRET_KEY": secrets.token_urlsafe(48),
        "NNT_HOSTNAME": stack.hostname,
        "NNT_DATA_DIR": str(data),
        "NNT_DOCKER_SOCKET": str(sock),
        "NNT_DOCKER_GID": str(sock.stat().st_gid),
        "NNT_WEB_PORT": str(stack.web_port),
        "NNT_ALLOWED_HOSTS": "localhost,127.0.0.1",
        "NNT_IMAGE_TAG": images.version(),
        "NNT_KAFKA_IMAGE": refs["kafka"],
        "NNT_DB_IMAGE": refs["db"],
    }
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)


def check_one_shots(stack: Stack) -> None:
    """provision and trainer ran to the end with exit code 0 (service_completed_successfully)."""
    for service in ONE_SHOT:
        name = stack.container(service)
        state = json.loads(podman("inspect", "--format", "{{json .State}}", name))
        logs = podman("logs", "--tail", "20", name, check=False)
        assert state["Status"] == "exited" and state["ExitCode"] == 0, f"{service}: {state}\n{logs}"


def check_unprivileged(stack: Stack) -> None:
    """Every service runs as a non-root user: running ones by `id -u` inside, one-shot ones
    by the user their container was created with."""
    for service in LONG_RUNNING:
        for name in stack.service_containers(service):
            uid = podman("exec", name, "id", "-u").strip()
            assert uid.isdigit() and uid != "0", f"{name} runs as uid {uid}"
    for service in ONE_SHOT:
        user = podman("inspect", "--format", "{{.Config.User}}", stack.container(service))
        assert user.strip() not in ("", "0", "root"), f"{service} runs as {user!r}"


def check_database_on_its_volume(stack: Stack) -> None:
    """The database is on the compose volume `db`, where PostgreSQL 18 images keep it
    (<volume>/18/docker), so it outlives its container."""
    volume = f"{stack.project}_db"
    mount = Path(podman("volume", "inspect", "--format", "{{.Mountpoint}}", volume).strip())
    found = sorted(p.parent.relative_to(mount) for p in mount.glob("*/docker/PG_VERSION"))
    assert [str(p) for p in found] == ["18/docker"], f"{volume}: {found}"


def check_health(stack: Stack) -> None:
    """Each container's own health check passes (run once more, now)."""
    for service in LONG_RUNNING:
        for name in stack.service_containers(service):
            done = subprocess.run(["podman", "healthcheck", "run", name],
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
            assert done.returncode == 0, f"{name}: health check failed: {done.stdout}{done.stderr}"


def submit(base: str, folder: Path) -> str:
    """The digits demo as an experiment, through POST /api/experiments; its simulation id."""
    from trainer.demo import write_demo

    config, model, paths = write_demo(folder, total_epochs=EPOCHS)
    config.update(name="compose-digits", tags=["compose"])
    for role in ("train", "val", "test"):
        config.pop(f"dataset_{role}", None)
    files = {
        f"dataset_{role}": (Path(p).name, Path(p).read_bytes(), "application/octet-stream")
        for role, p in paths.items()
    }
    files["model"] = ("model.json", json.dumps(model).encode(), "application/json")
    api = token_session(base, USER, PASSWORD)
    resp = api.post(f"{base}/api/experiments", data={"config": json.dumps(config)}, files=files)
    assert resp.status_code == 201, f"{resp.status_code} {resp.text[:500]}"
    (simulation,) = resp.json()["simulations"]
    return str(simulation)


def watch_run(stack: Stack, base: str, simulation: str, shot: Path) -> dict[str, object]:
    """The run page in Chromium until the run finished and its chart holds every epoch; the
    trainer container's networks are read while it runs. Returns what was seen."""
    from playwright.sync_api import sync_playwright

    seen: dict[str, object] = {"networks": None, "frames": 0, "points": 0}
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1366, "height": 900})
        log_in(page, f"{base}/simulations/{simulation}/", USER, PASSWORD)
        chart = page.locator("#chart-metrics")
        chart.wait_for(timeout=30_000)
        opened = time.monotonic()
        api = token_session(base, USER, PASSWORD)

        def done() -> bool:
            if seen["networks"] is None:
                for c in stack.trainer_containers():
                    nets = podman("inspect", "--format", "{{json .NetworkSettings.Networks}}",
                                  c["Names"][0], check=False)  # fmt: skip
                    seen["networks"] = sorted(json.loads(nets or "{}"))
            seen["points"] = int(chart.get_attribute("data-points") or 0)
            seen["frames"] = page.evaluate("window.nntLive ? window.nntLive.frames : 0")
            if seen["frames"] and "first_frame_s" not in seen:
                seen["first_frame_s"] = round(time.monotonic() - opened, 1)
            seen["status"] = api.get(f"{base}/api/simulations/{simulation}").json()["status"]
            if seen["status"] in ("failed", "stopped", "deleted"):
                raise AssertionError(f"the run ended {seen['status']}: {seen}")
            return seen["status"] == "finished" and int(seen["points"]) >= EPOCHS  # type: ignore[call-overload]

        try:
            polling.until(done, 600, "the run to finish with every epoch on its chart",
                          interval=1.0, sleep=lambda s: page.wait_for_timeout(s * 1000),
                          context=lambda: str(seen))  # fmt: skip
        finally:
            page.screenshot(path=str(shot), full_page=True)
            browser.close()
    return seen


def ensure_user(stack: Stack) -> None:
    """An account, made in the web container with the product's management command."""
    done = subprocess.run(  # noqa: S603 - podman, our arguments
        ["podman", "exec", "-i", stack.container("web"), "python", "-m", "web", "manage",
         "ensure_user", "--username", USER, "--password-stdin"],
        input=PASSWORD + "\n", capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def bring_up(stack: Stack, base: str, timings: Timings) -> None:
    """Compose's start order, one level at a time (see the module docstring)."""
    stack.compose("up", "-d", "--no-build", "--no-deps", "kafka", "db")
    wait_healthy(stack, ("kafka", "db"), 240)
    timings.mark("kafka and db up and healthy")
    stack.compose("up", "-d", "--no-build", "--no-deps", *ONE_SHOT)
    wait_exited(stack, ONE_SHOT, 300)
    check_one_shots(stack)
    timings.mark("provision and trainer ran to exit code 0")
    stack.compose("up", "-d", "--no-build", "--no-deps", "web", "stream", "orchestrator")
    workers = stack.service_containers("stream")
    assert len(workers) == STREAM_REPLICAS, f"stream: {workers}, replicas: {STREAM_REPLICAS}"
    polling.until(lambda: _answers(base), 180, f"the web at {base}", interval=1.0)
    wait_healthy(stack, ("web", "stream", "orchestrator"), 300)
    timings.mark("web, stream workers and orchestrator healthy")


def bring_down(stack: Stack, timings: Timings) -> dict[str, int]:
    """Compose's stop order, then `down -v`; each stopped service's exit code.

    podman-compose 1.x stops every container at once, Kafka with its clients: the components
    stop first here, as `docker compose down` does (reverse dependency order)."""
    codes: dict[str, int] = {}
    try:
        stack.compose("stop", "web", "stream", "orchestrator", timeout=300)
        for service in ("web", "stream", "orchestrator"):
            for name in stack.service_containers(service):
                codes[name] = int(podman("inspect", "--format", "{{.State.ExitCode}}", name))
        print(f"[compose] exit codes after stop: {codes}", flush=True)
        timings.mark("stop web, stream workers, orchestrator")
    finally:
        stack.compose("down", "-v", timeout=300)
        timings.mark("down -v")
    return codes


def test_it_runs_an_experiment_on_the_compose_stack_and_leaves_nothing(
    built: tuple[dict[str, str], Timings], engine_socket: Path, data_dir: Path, tmp_path: Path
) -> None:
    refs, timings = built
    suffix = uuid.uuid4().hex[:8]
    stack = Stack(f"nntc{suffix}", tmp_path / ".env", f"compose-{suffix}", free_port())
    write_env(stack.env_file, stack, refs, engine_socket, data_dir)
    base = f"http://127.0.0.1:{stack.web_port}"
    ticker = HealthTicker(stack)
    ticker.start()
    passed = False
    try:
        bring_up(stack, base, timings)
        check_unprivileged(stack)
        check_health(stack)
        check_database_on_its_volume(stack)
        ensure_user(stack)

        simulation = submit(base, tmp_path / "demo")
        artifacts = ROOT / "test-artifacts"
        artifacts.mkdir(exist_ok=True)
        seen = watch_run(stack, base, simulation, artifacts / "compose-run.png")
        timings.mark(f"run of {EPOCHS} epochs, submitted to finished")
        assert seen["networks"] == [TRAINING_NETWORK], f"trainer container networks: {seen}"
        assert int(seen["frames"]) >= 1, f"no WebSocket frame reached the run page: {seen}"  # type: ignore[call-overload]
        epochs = stack.psql(
            "SELECT count(DISTINCT epoch) FROM nnt_epoch_metric "
            f"WHERE simulation_id = '{uuid.UUID(simulation)}'"
        )
        assert int(epochs) == EPOCHS, f"{epochs} epochs in nnt_epoch_metric, {EPOCHS} expected"
        print(f"[compose] run page: {seen}; nnt_epoch_metric: {epochs} epochs", flush=True)
        # The orchestrator removes a finished run's container once it has read its exit code.
        polling.until(lambda: not stack.trainer_containers(), 60, "the trainer container gone")
        passed = True
    finally:
        ticker.stop()
        try:
            stopped = bring_down(stack, timings)
        finally:
            left = leftovers(stack)
            if left:
                force_clean(stack)
            artifacts = ROOT / "test-artifacts"
            artifacts.mkdir(exist_ok=True)
            (artifacts / "compose-stack.log").write_text("\n".join(stack.log) + "\n")
    print("[compose] timings:\n" + timings.report(), flush=True)
    if passed:
        assert left == [], f"left behind after down -v: {left}"
        killed = {name: code for name, code in stopped.items() if code == 137}
        assert not killed, f"SIGKILLed after their stop_grace_period: {killed}"


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}/", timeout=5).status_code == 200
    except requests.RequestException:
        return False
