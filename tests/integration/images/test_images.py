"""The product images as infra.images builds them (`make images`): each runs as its own
non-root user, and each long-running one passes its own HEALTHCHECK against the session's
real PostgreSQL and Kafka (host network: the tests' services listen on the host's 127.0.0.1).
The trainer image's training run is tests/integration/orchestrator/test_orchestrator_containers.py."""

from __future__ import annotations

import contextlib
import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import psycopg
import pytest
from docker.models.containers import Container

from infra import images, podman
from tests import polling
from tests.services import free_port

# What each image must be able to import as its own user: its component and its stack.
IMPORTS = {
    "web": "import daphne, django, web.config",
    "stream": "import faust, psycopg, stream_processors.settings",
    "orchestrator": "import docker, orchestrator.runtime",
    "trainer": "import tensorflow, trainer.runner",
}
LONG_RUNNING = ("web", "stream", "orchestrator")


@pytest.fixture(scope="module")
def engine() -> docker.DockerClient:
    """The Docker API of the local podman (infra/podman/setup.sh)."""
    podman.ensure()
    return docker.from_env(timeout=120)


@pytest.fixture(scope="module")
def app_env(
    engine: docker.DockerClient, pg_url: str, kafka_bootstrap: str, product_images: dict[str, str]
) -> dict[str, str]:
    """A new database on the session's server, provisioned by the web image's own
    provision.py (migrations, time-series tables, topics); the variables the images share."""
    name = f"nnt_img_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    env = {
        "DATABASE_URL": pg_url.rsplit("/", 1)[0] + "/" + name,
        "NNT_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "NNT_COMMAND_SECRET": os.environ["NNT_COMMAND_SECRET"],
        "NNT_SECRET_KEY": secrets.token_urlsafe(50),
    }
    out = run_once(engine, product_images["web"], ["python", "/opt/nnt/provision.py"],
                   environment=env, network_mode="host")  # fmt: skip
    assert "Kafka topics ready" in out, out
    return env


def run_once(engine: docker.DockerClient, image: str, command: list[str], **options: Any) -> str:
    """Run a command in the image to its end; its output (exit code 0 asserted).

    Waited for, then read, then removed: with `remove=True` podman's API may hand back the
    log before its last lines are written (seen under load).
    """
    container = engine.containers.run(image, command, detach=True, **options)
    try:
        code = container.wait(timeout=300)["StatusCode"]
        out = container.logs().decode(errors="replace")
    finally:
        container.remove(force=True)
    assert code == 0, out
    return out


@contextlib.contextmanager
def serving(engine: docker.DockerClient, image: str, env: dict[str, str]) -> Iterator[Container]:
    """The image's own command, detached on the host network; removed afterwards."""
    container = engine.containers.run(image, detach=True, environment=env, network_mode="host")
    try:
        yield container
    finally:
        container.remove(force=True)


def probe(container: Container, test: list[str]) -> str | None:
    """Run the image's HEALTHCHECK command in the container: its output when healthy."""
    container.reload()
    assert container.status == "running", container.logs()[-3000:].decode(errors="replace")
    code, out = container.exec_run(test[1:])
    return out.decode(errors="replace") if code == 0 else None


def healthy(container: Container, image: str, timeout: float = 150) -> str:
    """Poll the image's own HEALTHCHECK until it passes; its output."""
    test = images.healthcheck(image)
    assert test and test[0] == "CMD", f"{image}: HEALTHCHECK {test}"
    return polling.until(
        lambda: probe(container, test), timeout, f"{image} healthy", interval=2,
        context=lambda: container.logs()[-3000:].decode(errors="replace"),
    )  # fmt: skip


@pytest.mark.parametrize("target", images.DEFAULT_TARGETS)
def test_it_configures_a_non_root_user_and_a_healthcheck(
    target: str, product_images: dict[str, str]
) -> None:
    image = product_images[target]
    user = images.inspect(image)["Config"]["User"]
    assert user and user.split(":")[0] not in ("", "0", "root"), f"{image}: USER {user!r}"
    test = images.healthcheck(image)
    if target in LONG_RUNNING:
        assert test == ["CMD", "python", "/opt/nnt/healthcheck.py", target]
    else:
        assert test == ["NONE"], "a trainer is a batch job: the orchestrator watches its exit"


@pytest.mark.parametrize("target", images.DEFAULT_TARGETS)
def test_it_runs_as_its_own_non_root_user(
    target: str, engine: docker.DockerClient, product_images: dict[str, str]
) -> None:
    script = f"import os; {IMPORTS[target]}; print(os.getuid(), os.getgid())"
    out = run_once(engine, product_images[target], ["python", "-c", script],
                   network_mode="none", environment={"TF_CPP_MIN_LOG_LEVEL": "3"})  # fmt: skip
    uid, gid = out.split()[-2:]
    assert (uid, gid) == ("10001", "10001")


def test_the_web_image_passes_its_healthcheck_against_its_own_daphne(
    engine: docker.DockerClient, product_images: dict[str, str], app_env: dict[str, str]
) -> None:
    env = {**app_env, "NNT_WEB_PORT": str(free_port()), "NNT_ALLOWED_HOSTS": "localhost"}
    with serving(engine, product_images["web"], env) as web:
        assert healthy(web, product_images["web"]).startswith("web healthy")


def test_the_orchestrator_image_passes_its_healthcheck_as_a_member_of_its_group(
    engine: docker.DockerClient, product_images: dict[str, str], app_env: dict[str, str]
) -> None:
    # The process runtime: this test hands no engine socket over; the probe is about the
    # command group either way (the compose test runs it with the docker runtime).
    env = {"NNT_KAFKA_BOOTSTRAP": app_env["NNT_KAFKA_BOOTSTRAP"], "NNT_RUNTIME": "process",
           "NNT_COMMAND_SECRET": app_env["NNT_COMMAND_SECRET"],
           "NNT_HOSTNAME": f"img-{uuid.uuid4().hex[:8]}",
           "NNT_ORCHESTRATOR_GROUP": f"test-{uuid.uuid4()}"}  # fmt: skip
    with serving(engine, product_images["orchestrator"], env) as orchestrator:
        out = healthy(orchestrator, product_images["orchestrator"])
        assert out.startswith("orchestrator healthy")


def test_the_stream_image_passes_its_healthcheck_as_a_member_of_the_faust_group(
    engine: docker.DockerClient, product_images: dict[str, str], app_env: dict[str, str]
) -> None:
    env = {k: app_env[k] for k in ("DATABASE_URL", "NNT_KAFKA_BOOTSTRAP", "NNT_COMMAND_SECRET")}
    with serving(engine, product_images["stream"], env) as stream:
        assert healthy(stream, product_images["stream"]).startswith("stream healthy")
