"""Limits of a run: a process is pinned to NNT_RUN_CPUS cores with its memory bounded; no
container may be handed the engine's socket through NNT_DOCKER_HOST_MOUNTS."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from orchestrator.runtime import ProcessRuntime
from orchestrator.service import Orchestrator
from orchestrator.settings import OrchestratorError, load
from schemas import codecs
from tests.standins import sleeping_python
from tests.unit.orchestrator.fakes import create_command, make, settings_of, starts


@pytest.fixture
def sleeper(tmp_path: Path) -> str:
    """A stand-in for the trainer's Python: sleeps, whatever its arguments."""
    return sleeping_python(tmp_path)


@pytest.fixture
def orch(tmp_path: Path, sleeper: str) -> Iterator[Orchestrator]:
    settings = settings_of(tmp_path, nnt_trainer_python=sleeper, nnt_max_runs=2,
                           nnt_run_cpus=1, nnt_run_memory_bytes=512 * 1024**2)  # fmt: skip
    running = make(tmp_path, ProcessRuntime(settings), **settings.model_dump(exclude={"nnt_home"}))
    yield running
    for handle in running.handles.values():
        running.runtime.kill(handle)


def test_it_pins_each_process_to_its_share_of_cores_and_bounds_its_memory(
    orch: Orchestrator,
) -> None:
    orch.on_work(codecs.dumps(create_command()))
    for start in starts(orch):
        assert orch.on_work(codecs.dumps(start)) is True
    procs = [psutil.Process(h.pid) for h in orch.handles.values()]
    assert len(procs) == 2
    affinities = [set(p.cpu_affinity()) for p in procs]
    assert all(len(a) == 1 for a in affinities), "NNT_RUN_CPUS=1: one core each"
    if len(os.sched_getaffinity(0)) > 1:
        assert affinities[0] != affinities[1], "two runs do not share a core while others idle"
    assert all(p.rlimit(psutil.RLIMIT_DATA) == (2 * 512 * 1024**2,) * 2 for p in procs)


def test_a_run_gets_its_owners_per_run_memory_and_cpus(
    tmp_path: Path, sleeper: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.rundirs import RunDir

    settings = settings_of(tmp_path, nnt_trainer_python=sleeper, nnt_max_runs=2,
                           nnt_run_cpus=2, nnt_run_memory_bytes=1024**3)  # fmt: skip
    orch = make(tmp_path, ProcessRuntime(settings), **settings.model_dump(exclude={"nnt_home"}))
    orch.on_work(codecs.dumps(create_command()))
    spec = RunDir(orch.settings.runs_dir, starts(orch)[0].simulation_id).spec()
    sized = spec.model_copy(update={"memory_bytes": 256 * 1024**2, "cpus": 0.5})
    run_dir = tmp_path / "runs" / str(spec.simulation_id)
    handle = orch.runtime.start(sized, run_dir)
    try:
        process = psutil.Process(handle.pid)
        assert len(process.cpu_affinity()) == 1, "0.5 CPUs: one core, not the host's two"
        assert process.rlimit(psutil.RLIMIT_DATA) == (2 * 256 * 1024**2,) * 2
        assert handle.memory == 256 * 1024**2
    finally:
        orch.runtime.kill(handle)


def test_it_rounds_a_fractional_cpu_share_up_to_whole_cores(tmp_path: Path) -> None:
    runtime = ProcessRuntime(settings_of(tmp_path, nnt_run_cpus=1.5))
    assert len(runtime.cores()) == min(2, len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("mount", ["/run", "/var/run", "/run/podman", "/"])
def test_it_refuses_a_host_mount_holding_the_engine_socket(
    mount: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NNT_DOCKER_HOST_MOUNTS", f"/usr,{mount}")
    with pytest.raises(OrchestratorError, match="NNT_DOCKER_HOST_MOUNTS.*engine socket"):
        load()


def test_it_refuses_a_host_mount_that_is_a_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "engine.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        monkeypatch.setenv("NNT_DOCKER_HOST_MOUNTS", str(path))
        with pytest.raises(OrchestratorError, match="is a socket"):
            load()
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        monkeypatch.setenv("NNT_DOCKER_HOST_MOUNTS", str(tmp_path))
        with pytest.raises(OrchestratorError, match="contains the container engine socket"):
            load()
    monkeypatch.setenv("NNT_DOCKER_HOST_MOUNTS", "/usr,/etc")
    assert load().nnt_docker_host_mounts == ["/usr", "/etc"]


def test_it_forwards_the_trainer_limits_and_the_kafka_credentials_to_every_run() -> None:
    from orchestrator.__main__ import trainer_env
    from orchestrator.settings import OrchestratorSettings

    settings = OrchestratorSettings(
        nnt_kafka_bootstrap="kafka:9092",
        nnt_kafka_security_protocol="SASL_PLAINTEXT",
        nnt_kafka_sasl_mechanism="SCRAM-SHA-512",
        nnt_kafka_sasl_username="nnt",
        nnt_kafka_sasl_password="s3cret",
    )
    environ = {"NNT_TRAINER_MAX_PARAMS": "1000", "NNT_RUNTIME": "docker", "HOME": "/root"}
    assert trainer_env(settings, environ) == {
        "NNT_TRAINER_MAX_PARAMS": "1000",
        "NNT_KAFKA_BOOTSTRAP": "kafka:9092",
        "NNT_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "NNT_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "NNT_KAFKA_SASL_USERNAME": "nnt",
        "NNT_KAFKA_SASL_PASSWORD": "s3cret",
    }


def test_runs_log_in_as_the_trainers_own_principal_when_one_is_set() -> None:
    from orchestrator.__main__ import trainer_env
    from orchestrator.settings import OrchestratorSettings

    settings = OrchestratorSettings(
        nnt_kafka_security_protocol="SASL_PLAINTEXT",
        nnt_kafka_sasl_username="nnt-orchestrator",
        nnt_kafka_sasl_password="orchestrator-secret",
        nnt_trainer_kafka_sasl_username="nnt-trainer",
        nnt_trainer_kafka_sasl_password="trainer-secret",
    )
    environ = {"NNT_TRAINER_KAFKA_SASL_PASSWORD": "trainer-secret", "NNT_TRAINER_MAX_PARAMS": "9"}
    env = trainer_env(settings, environ)
    assert env["NNT_KAFKA_SASL_USERNAME"] == "nnt-trainer"
    assert env["NNT_KAFKA_SASL_PASSWORD"] == "trainer-secret"
    assert "orchestrator-secret" not in env.values()
    assert not any(k.startswith("NNT_TRAINER_KAFKA_") for k in env)
    assert env["NNT_TRAINER_MAX_PARAMS"] == "9"


@pytest.mark.parametrize(
    ("environ", "says"),
    [
        (
            {"NNT_TRAINER_KAFKA_SASL_USERNAME": "nnt-trainer"},
            "NNT_TRAINER_KAFKA_SASL_PASSWORD is unset",
        ),
        (
            {"NNT_TRAINER_KAFKA_SASL_USERNAME": "t", "NNT_TRAINER_KAFKA_SASL_PASSWORD": "p"},
            "sends no credentials",
        ),
    ],
)
def test_a_half_set_or_plaintext_trainer_principal_stops_the_orchestrator(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], says: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(OrchestratorError, match=says):
        load()


def test_it_gives_each_run_its_own_event_key_and_never_the_secret(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.rundirs import RunDir
    from orchestrator.runtime import run_key_of
    from schemas import auth
    from tests.unit.orchestrator.fakes import SECRET

    orch = make(tmp_path)
    orch.on_work(codecs.dumps(create_command()))
    rd = RunDir(orch.settings.runs_dir, starts(orch)[0].simulation_id)
    seen: dict[str, str] = {}

    class Started:
        pid = os.getpid()

    def popen(*args: object, env: dict[str, str], **kwargs: object) -> Started:
        seen.update(env)
        return Started()

    runtime = ProcessRuntime(orch.settings, {"NNT_COMMAND_SECRET": SECRET})  # probes for real
    monkeypatch.setenv("DATABASE_URL", "postgresql://orchestrator:pw@db/nntracker")
    monkeypatch.setattr("subprocess.Popen", popen)
    runtime.start(rd.spec(), rd.path)
    assert seen["NNT_RUN_KEY"] == auth.run_key(SECRET, rd.simulation_id)
    assert seen["NNT_RUN_KEY"] == run_key_of(orch.settings, rd.simulation_id)
    assert "NNT_COMMAND_SECRET" not in seen, "a trainer never holds the shared secret"
    assert "DATABASE_URL" not in seen, "nor the database the orchestrators share"
