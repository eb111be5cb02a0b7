"""The docker runtime on real podman: a hardened container per run, its whole lifecycle,
re-adoption after SIGKILL of the orchestrator, and the GPU refusal on a host without one."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from infra import podman
from orchestrator.containers import DockerRuntime
from orchestrator.settings import OrchestratorSettings
from schemas.commands import CreateCommand
from schemas.experiment import ExperimentConfig, expand, simulation_id
from schemas.run import DatasetPaths, RunSpec
from tests.integration.orchestrator.conftest import (
    Client,
    Orch,
    Tap,
    demo_experiment,
    epochs_of,
    until,
)

EPOCHS = 20


@pytest.fixture
def box(home: Path, kafka_bootstrap: str, docker_host: str) -> Iterator[Orch]:
    env = {**podman.runtime_env(), "DOCKER_HOST": docker_host, "NNT_MAX_RUNS": "1"}
    running = Orch(home, kafka_bootstrap, "box-host", f"test-{uuid.uuid4()}", **env).start()
    yield running
    running.kill()


def containers_of(sid: uuid.UUID) -> list:
    engine = docker.from_env()
    return engine.containers.list(all=True, filters={"label": f"nntracker.simulation={sid}"})


def assert_hardened(container) -> None:  # noqa: ANN001
    attrs, host = container.attrs, container.attrs["HostConfig"]
    assert attrs["Config"]["User"] in ("65534:65534", "65534")
    assert host["ReadonlyRootfs"] is True
    assert any("no-new-privileges" in opt for opt in host.get("SecurityOpt") or [])
    assert host["PidsLimit"] == 512 and host["Memory"] == 2 * 1024**3
    assert host["NetworkMode"] == "host" and host["NanoCpus"] == 1_000_000_000
    assert not host.get("CapAdd") and (
        "ALL" in (host.get("CapDrop") or []) or len(host["CapDrop"]) > 10
    )
    assert container.labels["nntracker.owner"] == "ana"
    writable = [m for m in attrs["Mounts"] if m.get("RW")]
    assert [Path(m["Source"]).name for m in writable] == [container.labels["nntracker.simulation"]]
    assert not any(
        "docker.sock" in m["Source"] or "podman.sock" in m["Source"] for m in attrs["Mounts"]
    )


def test_it_runs_a_container_through_its_whole_lifecycle(
    box: Orch, home: Path, client: Client, status_tap: Tap, epoch_tap: Tap
) -> None:
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana",
                           experiment=demo_experiment(home, EPOCHS, batch_size=4))  # fmt: skip
    client.send(create)
    sid = simulation_id(create.experiment_id, 0)
    until(lambda: status_tap.status(sid, "starting"), 60, "starting", box)
    t0 = time.monotonic()
    until(lambda: status_tap.status(sid, "running", "trainer"), 120, "trainer running", box)
    print(f"\ncontainer start to trainer running: {time.monotonic() - t0:.1f} s")
    (container,) = containers_of(sid)
    assert_hardened(container)
    until(lambda: len(epochs_of(epoch_tap, sid)) >= 2, 120, "two epochs", box)

    client.lifecycle("pause", sid)
    until(lambda: status_tap.status(sid, "paused"), 60, "paused", box)
    container.reload()
    assert container.status == "paused"
    client.lifecycle("resume", sid)
    until(lambda: status_tap.status(sid, "running", message="resumed by"), 60, "resumed", box)
    client.lifecycle("stop", sid)
    stopped = until(lambda: status_tap.status(sid, "stopped", "orchestrator"), 120, "stopped", box)
    assert stopped["epoch"] < EPOCHS
    until(lambda: not containers_of(sid), 30, "the stopped container removed", box)

    client.lifecycle("resume", sid)
    until(
        lambda: len(epochs_of(epoch_tap, sid)) > stopped["epoch"], 180, "an epoch after resume", box
    )
    box.kill(signal.SIGKILL)
    (survivor,) = containers_of(sid)
    assert survivor.status == "running", "the container outlives its orchestrator"
    box.start()
    until(lambda: status_tap.status(sid, "running", message="re-adopted"), 60, "re-adopted", box)
    until(lambda: status_tap.status(sid, "finished", "trainer"), 240, "finished", box)
    epochs = until(lambda: epochs_of(epoch_tap, sid) if len(epochs_of(epoch_tap, sid)) >= EPOCHS else None,
                   30, "every epoch event")  # fmt: skip
    assert sorted(epochs) == list(range(1, EPOCHS + 1)), "a resumed run repeats or skips nothing"
    until(lambda: not containers_of(sid), 30, "the finished container removed", box)

    client.lifecycle("delete", sid)
    until(lambda: status_tap.status(sid, "deleted"), 60, "deleted", box)
    assert not (home / "runs" / str(sid)).exists() and not containers_of(sid)


def test_it_refuses_a_gpu_run_on_a_host_without_one(home: Path, docker_host: str) -> None:
    settings = OrchestratorSettings(
        nnt_home=home, **{k.lower(): v for k, v in podman.runtime_env().items()}
    )
    runtime = DockerRuntime(settings)
    config = ExperimentConfig(dataset_train="stored:" + "a" * 64 + ".npz", gpu=True)
    plan = expand(uuid.uuid4(), config)[0]
    spec = RunSpec(simulation_id=plan.simulation_id, name=plan.name, config=config, plan=plan,
                   model={}, datasets=DatasetPaths(train="x"))  # fmt: skip
    (request,) = runtime.run_options(spec, home)["device_requests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    with pytest.raises(Exception, match="no GPU on this host: "):
        runtime.start(spec, home)
