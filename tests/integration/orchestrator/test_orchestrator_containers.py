"""The docker runtime on real podman with the real trainer image (built by infra.images, nothing
of the host mounted but the run's own files): a hardened container per run, its whole lifecycle
(with its epochs in PostgreSQL), re-adoption after SIGKILL of the orchestrator, delete of a
running K-fold run beside its sibling, orphan removal, and the GPU refusal on a host without one.

Network: the tests' broker listens on the host's 127.0.0.1, so these trainers use the host
network (NNT_CONTAINER_NETWORK's default); tests/integration/compose proves the internal
training network that reaches only Kafka."""

from __future__ import annotations

import contextlib
import json
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from infra import podman
from orchestrator.containers import LABEL_HOST, LABEL_SIMULATION, DockerRuntime
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
    rows,
    skip_history,
    until,
)
from tests.streamworker import Worker

EPOCHS = 20
FOLD_EPOCHS = 12


def container_host(home: Path, bootstrap: str, docker_host: str, image: str, slots: int) -> Orch:
    group = f"test-{uuid.uuid4()}"
    skip_history(bootstrap, group, "box-host")
    env = {**podman.runtime_env(image), "DOCKER_HOST": docker_host, "NNT_MAX_RUNS": str(slots)}
    return Orch(home, bootstrap, "box-host", group, **env).start()


def settings_for(home: Path, image: str, **extra: str) -> OrchestratorSettings:
    """The docker runtime's settings for the built trainer image."""
    env = {k.lower(): v for k, v in podman.runtime_env(image).items()}
    return OrchestratorSettings(nnt_home=home, **env, **extra)


@pytest.fixture
def box(home: Path, kafka_bootstrap: str, docker_host: str, trainer_image: str) -> Iterator[Orch]:
    running = container_host(home, kafka_bootstrap, docker_host, trainer_image, slots=1)
    yield running
    running.kill()


@pytest.fixture
def two_slots(
    home: Path, kafka_bootstrap: str, docker_host: str, trainer_image: str
) -> Iterator[Orch]:
    running = container_host(home, kafka_bootstrap, docker_host, trainer_image, slots=2)
    yield running
    running.kill()
    for c in docker.from_env().containers.list(
        all=True, filters={"label": f"{LABEL_HOST}=box-host"}
    ):
        c.remove(force=True)


def containers_of(sid: uuid.UUID) -> list:
    engine = docker.from_env()
    return engine.containers.list(all=True, filters={"label": f"nntracker.simulation={sid}"})


def assert_hardened(container, home: Path, image: str) -> None:  # noqa: ANN001
    attrs, host = container.attrs, container.attrs["HostConfig"]
    assert any(tag.endswith(image) for tag in container.image.tags), container.image.tags
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
    sid = container.labels["nntracker.simulation"]
    spec = json.loads((home / "runs" / sid / "run.json").read_text())
    datasets = {p for p in spec["datasets"].values() if p}
    mounted = {m["Source"] for m in attrs["Mounts"] if not m.get("RW")}
    assert mounted == datasets, "the run's own datasets, read-only, and nothing of the host"
    assert not any(m["Source"].startswith(("/usr", "/lib", sys.prefix)) for m in attrs["Mounts"])


def test_it_runs_a_container_through_its_whole_lifecycle(
    box: Orch,
    trainer_image: str,
    home: Path,
    client: Client,
    status_tap: Tap,
    epoch_tap: Tap,
    stream_worker: Worker,
    web_tables: str,
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
    assert_hardened(container, home, trainer_image)
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
    stored = until(lambda: epochs_in_db(web_tables, sid) == EPOCHS or None, 90,
                   "every epoch in PostgreSQL", box)  # fmt: skip
    assert stored, f"{stream_worker.text()[-2000:]}"

    client.lifecycle("delete", sid)
    until(lambda: status_tap.status(sid, "deleted"), 60, "deleted", box)
    assert not (home / "runs" / str(sid)).exists() and not containers_of(sid)


def epochs_in_db(pg_url: str, sid: uuid.UUID) -> int:
    """Distinct epochs the stream processors wrote for one simulation."""
    sql = "SELECT count(DISTINCT epoch) FROM nnt_epoch_metric WHERE simulation_id = %s"
    return int(rows(pg_url, sql, sid)[0][0])


def test_it_deletes_a_running_fold_and_leaves_its_sibling_running_to_the_end(
    two_slots: Orch, home: Path, client: Client, status_tap: Tap, epoch_tap: Tap
) -> None:
    # Small batches: slow enough epochs that the doomed fold is still running when deleted.
    experiment = demo_experiment(home, FOLD_EPOCHS, batch_size=2, k_fold_validation=2)
    create = CreateCommand(experiment_id=uuid.uuid4(), issued_by="ana", experiment=experiment)
    client.send(create)
    doomed, sibling = simulation_id(create.experiment_id, 0), simulation_id(create.experiment_id, 1)
    for sid in (sibling, doomed):  # the doomed one last: it is deleted right after an epoch
        until(lambda s=sid: epochs_of(epoch_tap, s), 180, f"an epoch of {sid}", two_slots)
    (container,) = containers_of(doomed)
    container.reload()
    assert container.status == "running" and len(epochs_of(epoch_tap, doomed)) < FOLD_EPOCHS

    client.lifecycle("delete", doomed)
    until(lambda: status_tap.status(doomed, "deleted"), 60, "the running fold deleted", two_slots)
    assert not containers_of(doomed), "no container is left with its label"
    assert not (home / "runs" / str(doomed)).exists()
    (other,) = containers_of(sibling)
    other.reload()
    assert other.status == "running", "the sibling fold's container is untouched"
    until(lambda: status_tap.status(sibling, "finished", "trainer"), 240, "sibling finished",
          two_slots)  # fmt: skip
    assert sorted(epochs_of(epoch_tap, sibling)) == list(range(1, FOLD_EPOCHS + 1))
    until(lambda: not containers_of(sibling), 30, "the finished container removed", two_slots)


def test_it_removes_this_hosts_orphan_containers_only(
    home: Path, docker_host: str, trainer_image: str
) -> None:
    engine = docker.from_env()
    known, orphan = uuid.uuid4(), uuid.uuid4()

    def sleeper(host: str, sid: uuid.UUID) -> str:
        labels = {LABEL_HOST: host, LABEL_SIMULATION: str(sid)}
        return engine.containers.run(trainer_image, ["sleep", "600"], detach=True,
                                     labels=labels).id  # fmt: skip

    # Host names of this test only: a container an earlier, interrupted session left behind
    # with a fixed name would be an orphan of this host too.
    host, other = f"orphan-host-{known.hex[:8]}", f"other-{known.hex[:8]}"
    ids = [sleeper(host, known), sleeper(host, orphan), sleeper(other, orphan)]
    try:
        settings = OrchestratorSettings(nnt_home=home, nnt_hostname=host)
        assert DockerRuntime(settings).orphans({known}) == [str(orphan)]
        left = {c.id for c in engine.containers.list(all=True) if c.id in ids}
        assert left == {ids[0], ids[2]}, "its own run and another host's container stay"
    finally:
        for cid in ids:
            with contextlib.suppress(docker.errors.NotFound):
                engine.containers.get(cid).remove(force=True)


def test_it_mounts_only_the_runs_datasets_on_the_configured_network(
    home: Path, docker_host: str, trainer_image: str
) -> None:
    settings = settings_for(home, trainer_image, nnt_container_network="nnt-trainers")
    config = ExperimentConfig(dataset_train="stored:" + "a" * 64 + ".npz")
    plan = expand(uuid.uuid4(), config)[0]
    store = settings.datasets_dir
    train, val = str(store / ("a" * 64 + ".npz")), str(store / ("b" * 64 + ".npz"))
    spec = RunSpec(simulation_id=plan.simulation_id, name=plan.name, config=config, plan=plan,
                   model={}, datasets=DatasetPaths(train=train, val=val))  # fmt: skip
    options = DockerRuntime(settings).run_options(spec, home / "runs" / "x")
    assert options["network_mode"] == "nnt-trainers"
    volumes = options["volumes"]
    assert volumes[train]["mode"] == volumes[val]["mode"] == "ro"
    assert str(store) not in volumes
    assert [p for p, v in volumes.items() if v["mode"] == "rw"] == [str(home / "runs" / "x")]
    # The host's limits, unless the owner's per-run limits lowered them (rules.run_resources).
    assert (options["mem_limit"], options["nano_cpus"]) == (settings.nnt_run_memory_bytes,
                                                            int(settings.nnt_run_cpus * 1e9))  # fmt: skip
    sized = spec.model_copy(update={"memory_bytes": 256 * 1024**2, "cpus": 0.5})
    options = DockerRuntime(settings).run_options(sized, home / "runs" / "x")
    assert (options["mem_limit"], options["memswap_limit"], options["nano_cpus"]) == (
        256 * 1024**2, 256 * 1024**2, 500_000_000)  # fmt: skip


def test_it_refuses_a_gpu_run_on_a_host_without_one(
    home: Path, docker_host: str, trainer_image: str
) -> None:
    runtime = DockerRuntime(settings_for(home, trainer_image))
    config = ExperimentConfig(dataset_train="stored:" + "a" * 64 + ".npz", gpu=True)
    plan = expand(uuid.uuid4(), config)[0]
    spec = RunSpec(simulation_id=plan.simulation_id, name=plan.name, config=config, plan=plan,
                   model={}, datasets=DatasetPaths(train="x"))  # fmt: skip
    (request,) = runtime.run_options(spec, home)["device_requests"]
    assert request["Count"] == -1 and request["Capabilities"] == [["gpu"]]
    with pytest.raises(Exception, match="no GPU on this host: "):
        runtime.start(spec, home)
